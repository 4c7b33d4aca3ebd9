from __future__ import annotations


def test_run_dag_runs_a_dag_and_returns_its_xcom(run_dag):
    result = run_dag("harness_smoke", conf={"who": "harness"})
    result.assert_success()
    assert result.xcoms["answer"] == {"answer": 42, "conf": {"who": "harness"}}
