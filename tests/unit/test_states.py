"""One set of job states: RQ's, named once, and the page reads the end states from the server."""

from __future__ import annotations

from flask.testing import FlaskClient
from rq.job import JobStatus

from plotjobs import states
from plotjobs.cli import client
from tests.support.processes import PROJECT_ROOT


def test_our_states_are_exactly_rqs() -> None:
    assert {state.value for state in states.JobState} == {status.value for status in JobStatus}


def test_the_groups_of_states_do_not_overlap_where_they_must_not() -> None:
    assert not states.TERMINAL & states.ACTIVE
    assert set(states.JobState) == states.TERMINAL | states.ACTIVE
    assert states.RECOVERABLE <= states.ACTIVE
    assert states.is_terminal(None) and states.is_terminal("stopped") and not states.is_terminal("queued")


def test_the_page_is_given_the_end_states_and_its_script_holds_no_list_of_its_own(fake_client: FlaskClient) -> None:
    page = fake_client.get("/").get_data(as_text=True)
    assert '<meta name="plotjobs-terminal-states" content="canceled failed finished stopped">' in page
    live = (PROJECT_ROOT / "static" / "js" / "live.js").read_text()
    assert 'meta[name="plotjobs-terminal-states"]' in live and '"stopped"' not in live


def test_the_cli_client_uses_the_same_end_states() -> None:
    assert client.states.TERMINAL is states.TERMINAL
