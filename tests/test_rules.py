import math
import tomllib

import pytest

from pose_core.core.rules import DEFAULT_RULES_PATH, EXERCISES, RulesError, load_rules, parse_rules, rule_to_dict


def test_packaged_rules_cover_the_8_gym_exercises():
    rules = load_rules()
    assert sorted(rules.exercises) == sorted(EXERCISES)
    assert rules["squat"].primary_angle == "knee"
    assert rules["pullup"].primary_angle == "elbow"
    assert rules["pushup"].primary_angle == "elbow"
    for rule in rules.exercises.values():
        assert rule.primary_angle in rule.angles
        c = rule.counting
        assert c.rest in ("high", "low") and c.min_amplitude > 0 and c.max_rep_s > c.min_rep_s
        for check in rule.rep_checks + rule.frame_checks:
            assert check.views and set(check.views) <= {"side", "front", "rear", "oblique"}


def test_rules_are_frozen():
    rule = load_rules()["squat"]
    with pytest.raises(Exception):
        rule.primary_angle = "hip"


def test_user_file_overrides_one_value(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text("[exercises.squat.counting]\nmin_amplitude = 45\n")
    rules = load_rules(user)
    assert rules["squat"].counting.min_amplitude == 45
    assert rules["squat"].counting.max_rep_s == load_rules()["squat"].counting.max_rep_s
    assert rules["pushup"] == load_rules()["pushup"]
    assert rules.source == str(user)


def base() -> dict:
    with open(DEFAULT_RULES_PATH, "rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize("mutate,key,fragment", [
    (lambda d: d["exercises"]["squat"].update(colour="red"), "exercises.squat.colour", "unknown key"),
    (lambda d: d["exercises"]["squat"]["angles"]["knee"].update(joints=["hip", "kneecap", "ankle"]), "exercises.squat.angles.knee.joints", "unknown joint 'kneecap'"),
    (lambda d: d["exercises"]["squat"]["angles"]["knee"].update(joints=["hip", "knee"]), "exercises.squat.angles.knee.joints", "needs 3 joints"),
    (lambda d: d["exercises"]["squat"].update(primary_angle="elbow"), "exercises.squat.primary_angle", "'elbow' is not one of"),
    (lambda d: d["exercises"]["squat"]["counting"].update(rest_threshold=100), "exercises.squat.counting.rest_threshold", "no longer used"),
    (lambda d: d["exercises"]["squat"]["counting"].update(min_amplitude=0), "exercises.squat.counting.min_amplitude", "outside"),
    (lambda d: d["exercises"]["squat"]["counting"].update(max_rep_s=0.1), "exercises.squat.counting.max_rep_s", "outside"),
    (lambda d: d["exercises"]["squat"]["counting"].update(typical_rep_s=[5, 1]), "exercises.squat.counting.typical_rep_s", "low 5 is above high 1"),
    (lambda d: d["exercises"]["squat"]["counting"].update(typical_rep_s=2), "exercises.squat.counting.typical_rep_s", "expected [low, high]"),
    (lambda d: d["exercises"]["squat"]["counting"].update(max_reps_per_minute=0), "exercises.squat.counting.max_reps_per_minute", "outside"),
    (lambda d: d["exercises"]["squat"]["rep_checks"][0].update(views=["top"]), "exercises.squat.rep_checks[0].views", "'top' is not one of"),
    (lambda d: d["exercises"]["squat"]["rep_checks"][0].update(views=[]), "exercises.squat.rep_checks[0].views", "non-empty list"),
    (lambda d: d["exercises"]["squat"]["frame_checks"][0].update(min=120, max=100), "exercises.squat.frame_checks[0]", "min (120.0) must be less than max (100.0)"),
    (lambda d: d["exercises"]["squat"]["rep_checks"][0].update(stat="mean"), "exercises.squat.rep_checks[0].stat", "'mean' is not one of"),
    (lambda d: d["exercises"]["squat"]["counting"].update(min_amplitude="deep"), "exercises.squat.counting.min_amplitude", "expected a number"),
    (lambda d: d["defaults"].update(min_visibility=1.5), "defaults.min_visibility", "outside 0..1"),
    (lambda d: d["exercises"].update(deadlift=d["exercises"]["squat"]), "exercises.deadlift", "unknown exercise"),
    (lambda d: d["exercises"]["squat"]["counting"]["rest_requires"][0].update(angle="neck"), "rest_requires[0].angle", "'neck' is not one of"),
    (lambda d: d["exercises"]["squat"]["angles"]["knee"].update(label="K" * 31), "exercises.squat.angles.knee.label", "too long"),
    (lambda d: d["exercises"]["squat"]["angles"]["knee"].update(label=""), "exercises.squat.angles.knee.label", "non-empty string"),
    (lambda d: d["exercises"]["squat"]["counting"].update(concentric="up"), "exercises.squat.counting.concentric", "'up' is not one of to_peak, from_peak"),
    (lambda d: d["exercises"]["squat"]["counting"].update(extreme_name=3), "exercises.squat.counting.extreme_name", "non-empty string"),
])
def test_validation_errors_name_file_key_and_value(mutate, key, fragment):
    d = base()
    mutate(d)
    with pytest.raises(RulesError) as e:
        parse_rules(d, source="my_rules.toml")
    msg = str(e.value)
    assert msg.startswith("my_rules.toml: ")
    assert key in msg
    assert fragment in msg


@pytest.mark.parametrize("text,fragment", [
    ("this is = not [toml", "not valid TOML"),
    ("[exercises.squat.counting]\nrest = 'sideways'\n", "'sideways' is not one of high, low"),
    ("[exercises.squat]\nprimary = 'knee'\n", "exercises.squat.primary: unknown key"),
])
def test_invalid_user_files(tmp_path, text, fragment):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(RulesError, match="bad.toml") as e:
        load_rules(p)
    assert fragment in str(e.value)


def test_missing_user_file():
    with pytest.raises(RulesError, match="not found"):
        load_rules("/nonexistent/rules.toml")


def test_rule_to_dict_round_trips():
    rules = load_rules()
    doc = {"exercises": {n: rule_to_dict(r) for n, r in rules.exercises.items()}}
    again = parse_rules(doc)
    for name, rule in rules.exercises.items():
        assert again[name] == rule


def test_check_messages_name_the_measurement():
    rules = load_rules()
    for rule in rules.exercises.values():
        for check in rule.rep_checks:
            assert "{value}" in check.message, (rule.name, check.message)


# ------------------------------------------------------------------ issue 12: impossible values, text, BOM

@pytest.mark.parametrize("text, fragment", [
    # joint / segment angles live in 0..180 (issue 12, item 11)
    ('[[exercises.squat.rep_checks]]\nangle = "knee"\nstat = "min"\nmax = 250\nmessage = "x"\n',
     "rep_checks[0].max: 250 is not a possible angle (angles are 0..180 deg)"),
    ('[[exercises.squat.frame_checks]]\nangle = "knee"\nphase = "peak"\nmin = -20\nmessage = "x"\n',
     "frame_checks[0].min: -20 is not a possible angle"),
    ('[[exercises.squat.counting.rest_requires]]\nangle = "torso_lean"\nmax = 200\n',
     "rest_requires[0].max: 200 is not a possible angle"),
    # the retired absolute thresholds are refused whatever their value
    ("[exercises.squat.counting]\npeak_threshold = -20\n", "counting.peak_threshold: no longer used"),
    ("[exercises.squat.counting]\nrest_threshold = 250\n", "counting.rest_threshold: no longer used"),
    # texts shown on every page are capped (issue 12, item 1)
    ('[exercises.squat]\ndisplay_name = "' + "x" * 900_000 + '"\n',
     "exercises.squat.display_name: too long (900,000 characters, at most 80)"),
    ('[exercises.squat.counting.phase_names]\npeak = "' + "p" * 31 + '"\n', "phase_names.peak: too long"),
    ('[[exercises.squat.rep_checks]]\nangle = "knee"\nstat = "min"\nmax = 100\nmessage = "' + "m" * 201 + '"\n',
     "rep_checks[0].message: too long (201 characters, at most 200)"),
    ('[exercises.squat]\ndisplay_name = "   "\n', "display_name: expected a non-empty string"),
    ('[exercises.squat.angles."![x](http://127.0.0.1:9/t.png)"]\nkind = "joint"\njoints = ["hip", "knee", "ankle"]\n',
     "is not an angle name"),
])
def test_impossible_angles_and_overlong_texts_are_refused(tmp_path, text, fragment):
    user = tmp_path / "mine.toml"
    user.write_text(text)
    with pytest.raises(RulesError) as e:
        load_rules(user)
    assert fragment in str(e.value)
    assert len(str(e.value)) < 600  # a 900,000-character value is not echoed back


def test_heights_are_not_bounded_like_angles():
    # a height is in % of the torso length, up positive: no 0..180 limit there
    rules = load_rules(user_text='[[exercises.squat.rep_checks]]\nangle = "hip_height"\nstat = "range"\n'
                                 'min = 400\nmessage = "move more"\n')
    assert rules["squat"].rep_checks[0].min == 400


def test_a_rules_file_with_a_byte_order_mark_is_accepted(tmp_path):
    from pose_core.store.tuning import save_user_rules_text

    body = "[exercises.squat.counting]\nmin_amplitude = 45\n"
    user = tmp_path / "bom.toml"
    user.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert load_rules(user)["squat"].counting.min_amplitude == 45
    assert load_rules(user_text="\ufeff" + body)["squat"].counting.min_amplitude == 45
    target = tmp_path / "rules.toml"
    save_user_rules_text(target, b"\xef\xbb\xbf" + body.encode())
    assert target.read_text(encoding="utf-8") == body
    assert load_rules(target)["squat"].counting.min_amplitude == 45


def test_messages_name_the_file_by_its_label_not_the_server_path(tmp_path):
    user = tmp_path / "deep" / "rules.toml"
    user.parent.mkdir()
    user.write_text("[exercises.squat]\nbogus = 1\n")
    with pytest.raises(RulesError) as e:
        load_rules(user, label="rules.toml")
    assert str(e.value).startswith("rules.toml: exercises.squat.bogus") and str(tmp_path) not in str(e.value)
    with pytest.raises(RulesError) as e:
        load_rules(user.with_name("missing.toml"), label="missing.toml")
    assert str(e.value) == "missing.toml: rules file not found"


def test_every_angle_has_a_name_for_people_and_it_survives_saving():
    rules = load_rules()
    for rule in rules.exercises.values():
        for name in rule.angles:
            label = rule.angle_label(name)
            assert label and "_" not in label and label[0].isupper(), (rule.name, name, label)
    assert rules["pushup"].angle_label("hip_sag") == "Hip sag"
    assert rules["pullup"].angle_label("chin_height") == "Chin above hands"
    # a rule written back (the Thresholds page's save) keeps its labels, concentric half and extreme's name
    again = parse_rules({"exercises": {"pullup": rule_to_dict(rules["pullup"])}})["pullup"]
    assert again.angle_labels == rules["pullup"].angle_labels
    assert (again.counting.concentric, again.counting.extreme_name) == ("to_peak", "top elbow angle")
    jj = parse_rules({"exercises": {"jumping_jacks": rule_to_dict(rules["jumping_jacks"])}})["jumping_jacks"]
    assert jj.counting.concentric == "" and jj == rules["jumping_jacks"]


DEEP = 200_000


@pytest.mark.parametrize("text", [
    "x = " + "[" * DEEP + "]" * DEEP + "\n",  # arrays in arrays
    "x = " + "{a=" * DEEP + "1" + "}" * DEEP + "\n",  # inline tables in inline tables
    "[exercises.squat]\n" + ".".join(["a"] * DEEP) + " = 1\n",  # dotted keys: parsed, then copied and merged
], ids=["arrays", "inline-tables", "dotted-keys"])
def test_a_rules_file_nested_200000_levels_deep_is_refused_with_a_reason(tmp_path, text):
    """Issue 25, item 7: not a RecursionError from the TOML parser or from copying the parsed tables."""
    p = tmp_path / "deep.toml"
    p.write_text(text)
    with pytest.raises(RulesError) as e:
        load_rules(p, label="deep.toml")
    assert str(e.value).startswith("deep.toml: ") and "nested too deeply" in str(e.value), str(e.value)[:300]
    from pose_core.store.tuning import save_user_rules_text

    target = tmp_path / "rules.toml"
    with pytest.raises(RulesError) as e:  # an upload: the message names the uploaded file, not the target
        save_user_rules_text(target, text.encode(), label="uploaded deep.toml")
    assert str(e.value).startswith("uploaded deep.toml: ") and "nested too deeply" in str(e.value)
    assert not target.exists()
