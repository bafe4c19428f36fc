"""The typed PPL-p% answer and interval write the JSON objects they replaced and still read like them."""

from sparsinglaw.results import Interval, MeasureResult, Solution


def test_a_record_writes_back_the_object_it_read_in_its_key_order():
    doc = {"method": "trend", "cett": None, "no_answer": "saturated", "sparse_passes": 3, "converged": False,
           "subset": {"of": 3}}
    sol = Solution.of(doc)
    assert sol.to_dict() == doc and list(sol.to_dict()) == list(doc)
    assert sol.no_answer == "saturated" and sol.extra == {"subset": {"of": 3}}
    assert sol["cett"] is None and sol.get("no_answer") == "saturated" and "value" not in sol
    sol["bound"] = "CETT 1"
    assert list(sol.to_dict())[-1] == "bound"


def test_an_interval_takes_more_quantities_and_nests_in_a_solution():
    doc = {"level": 0.9, "samples": 10, "activation_ratio": [0.1, 0.2], "censored_fraction": 0.0, "method": "m"}
    iv = Interval.of(doc)
    assert iv.to_dict() == doc and iv.activation_ratio == [0.1, 0.2]
    iv.update({"dead_neuron_ratio": [0.0, 0.01]})
    assert iv["dead_neuron_ratio"] == [0.0, 0.01]
    sol = Solution.of({"method": "trend", "value": None, "no_answer": "n", "interval": doc})
    assert isinstance(sol.interval, Interval) and sol.to_dict()["interval"] == doc


def test_a_result_types_what_solvers_and_old_files_give_as_dicts():
    result = MeasureResult.from_dict({
        "model": "m", "metric": "pplp", "setting": {}, "dense_ppl": 2.0, "sparse_ppl": 2.02, "ppl_ratio": 1.01,
        "activation_ratio": 0.3, "threshold_rule": "r", "layers": [], "dead_neuron_ratio": 0.0, "n_tokens": 8,
        "n_sequences": 1, "seq_len": 8, "data_source": "d", "forward_passes": 2,
        "interval": {"level": 0.9, "activation_ratio": [0.2, 0.4]}, "solution": {"method": "trend", "cett": 0.1}})
    assert isinstance(result.solution, Solution) and isinstance(result.interval, Interval)
    assert result.to_dict()["solution"] == {"method": "trend", "cett": 0.1}
    assert result.summary()["activation_ratio.low"] == 0.2
    result.solution = {"method": "cett-calibrated", "cett": 0.2}
    assert result.solution.method == "cett-calibrated"
