use super::*;

const MINIMAL: &str = r#"
version = 1
name = "minimal"
[cluster]
regions = ["us-east-1", "eu-west-1"]
[workload]
duration = "30s"
rate = "100/s"
mix = { encrypt = 3, decrypt = 1 }
"#;

fn with(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

fn field_of(text: &str) -> String {
    match Experiment::parse(text, false) {
        Err(SpecError::Invalid { field, .. }) => field,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let e = Experiment::parse(MINIMAL, false).expect("valid");
    assert_eq!(e.cluster.nodes, 3);
    assert_eq!(e.workload.arrival, Arrival::Rate(100));
    assert_eq!(e.workload.clients, ["us-east-1", "eu-west-1"]);
    assert_eq!(e.workload.settle, Duration::from_secs(10));
    assert_eq!(
        e.workload.mix,
        [(Operation::Decrypt, 1), (Operation::Encrypt, 3)]
    );
    assert!(e.links.is_empty() && e.faults.is_empty() && e.probes.is_empty());
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let err = Experiment::parse(&with("[workload.extra]\nx = 1"), false);
    assert!(matches!(err, Err(SpecError::Syntax(_))), "{err:?}");
    let err =
        Experiment::parse(&MINIMAL.replace("rate =", "rates ="), false).expect_err("unknown key");
    let text = err.to_string();
    assert!(text.contains("rates") && text.contains("line"), "{text}");
}

#[test]
fn bad_values_name_their_field() {
    assert_eq!(
        field_of(&MINIMAL.replace("version = 1", "version = 2")),
        "version"
    );
    assert_eq!(
        field_of(&MINIMAL.replace("\"eu-west-1\"]", "\"mars\"]")),
        "cluster.regions[1]"
    );
    assert_eq!(
        field_of(&MINIMAL.replace("rate = \"100/s\"", "rate = \"100/s\"\nconcurrency = 4")),
        "workload"
    );
    assert_eq!(
        field_of(&MINIMAL.replace("decrypt = 1", "decrypt = 1, paint = 2")),
        "workload.mix.paint"
    );
    assert_eq!(
        field_of(&with(
            "[[fault]]\naction = \"kill\"\nnode = \"us-east-1/4\"\nat = \"1s\""
        )),
        "fault[0].node"
    );
    assert_eq!(
        field_of(&with(
            "[[fault]]\naction = \"kill\"\nregion = \"us-east-1\"\nat = \"1s\"\nloss = 0.5"
        )),
        "fault[0].loss"
    );
    assert_eq!(
        field_of(&with(
            "[[fault]]\naction = \"pause\"\npick = \"leader\"\nat = \"1s\""
        )),
        "fault[0].region"
    );
    assert_eq!(
        field_of(&with(
            "[[fault]]\naction = \"kill\"\nregion = \"us-east-1\"\nat = \"40s\""
        )),
        "fault[0].at"
    );
    assert_eq!(
        field_of(&with(
            "[[fault]]\naction = \"kill\"\nregion = \"us-east-1\"\nat = \"1s\"\nevery = \"5s\""
        )),
        "fault[0].every"
    );
    assert_eq!(
        field_of(&with("[[fault]]\naction = \"partition\"\nfrom = \"us-east-1\"\nto = \"us-east-1\"\nat = \"1s\"")),
        "fault[0]"
    );
    assert_eq!(
        field_of(&with("[[fault]]\naction = \"melt\"\nat = \"1s\"")),
        "fault[0].action"
    );
    assert_eq!(
        field_of(&with("[[probe]]\nname = \"p\"\nwindow = \"5s\"")),
        "probe[0]"
    );
    assert_eq!(
        field_of(&with("[links]\npreset = \"aws-like\"\n[[links.link]]\nfrom = \"us-east-1\"\nto = \"eu-west-1\"\nloss = 2.0")),
        "links.link[0].loss"
    );
    assert_eq!(
        field_of(&MINIMAL.replace("name = \"minimal\"", "name = \"../x\"")),
        "name"
    );
}

#[test]
fn links_start_from_the_preset_and_lines_override_it() {
    let e = Experiment::parse(
        &with("[links]\npreset = \"aws-like\"\n[[links.link]]\nfrom = \"us-east-1\"\nto = \"eu-west-1\"\ndelay = \"5ms\"\nboth_ways = false"),
        false,
    )
    .expect("valid");
    assert_eq!(e.links.len(), 2);
    let get = |from: &str| e.links.iter().find(|l| l.from == from).expect("set");
    assert_eq!(get("us-east-1").delay, Duration::from_millis(5));
    assert_eq!(
        get("eu-west-1").delay,
        Duration::from_millis(35),
        "the preset's"
    );
}

#[test]
fn quick_scales_the_fault_schedule_with_the_duration() {
    let text = with(
        "[[fault]]\naction = \"kill\"\nregion = \"us-east-1\"\npick = \"leader\"\nat = \"10s\"\nfor = \"6s\"\n[quick]\nduration = \"15s\"\nrate = \"20/s\"",
    );
    let full = Experiment::parse(&text, false).expect("valid");
    let quick = Experiment::parse(&text, true).expect("valid");
    assert!(!full.quick && quick.quick);
    assert_eq!(quick.workload.duration, Duration::from_secs(15));
    assert_eq!(quick.workload.arrival, Arrival::Rate(20));
    assert_eq!(quick.faults[0].at, Duration::from_secs(5));
    assert_eq!(quick.faults[0].lasts, Some(Duration::from_secs(3)));
    assert_eq!(
        quick.faults[0].action,
        FaultAction::Kill(NodeTarget::Leader("us-east-1".into()))
    );
    assert!(
        Experiment::parse(MINIMAL, true).is_err(),
        "no [quick] table"
    );
}

fn one_fault(lines: &str) -> String {
    with(&format!("[[fault]]\nat = \"5s\"\n{lines}"))
}

#[test]
fn node_hook_faults_read_into_their_actions() {
    let parsed = |lines: &str| {
        let e = Experiment::parse(&one_fault(lines), false).expect("valid");
        e.faults[0].clone()
    };
    let jump = parsed("action = \"clock-jump\"\nregion = \"eu-west-1\"\nby = \"8d\"");
    assert_eq!(
        jump.action,
        FaultAction::ClockJump {
            region: "eu-west-1".into(),
            by: Duration::from_secs(8 * 86_400)
        }
    );
    let skew = parsed(
        "action = \"clock-skew\"\nregion = \"us-east-1\"\nby = \"-2h\"\ndrift = \"1d/s\"\nfor = \"10s\"",
    );
    assert_eq!(
        skew.action,
        FaultAction::ClockSkew {
            region: "us-east-1".into(),
            skew_ms: -7_200_000,
            drift_ms_per_s: 86_400_000
        }
    );
    assert_eq!(skew.lasts, Some(Duration::from_secs(10)));
    assert_eq!(
        parsed("action = \"pause-sync\"\nregion = \"us-east-1\"\nfor = \"3s\"").action,
        FaultAction::PauseSync("us-east-1".into())
    );
    assert_eq!(
        parsed(
            "action = \"inject-error\"\nregion = \"us-east-1\"\noperation = \"Encrypt\"\nerror = \"ThrottlingException\"\npercent = 20"
        )
        .action,
        FaultAction::InjectError {
            region: "us-east-1".into(),
            operation: Some(Operation::Encrypt),
            error: InjectedError::Throttling,
            percent: 20.0
        }
    );
    assert_eq!(
        parsed("action = \"inject-latency\"\nregion = \"eu-west-1\"\ndelay = \"200ms\"").action,
        FaultAction::InjectLatency {
            region: "eu-west-1".into(),
            operation: None,
            delay: Duration::from_millis(200),
            percent: 100.0
        }
    );
    let e = Experiment::parse(
        &one_fault("action = \"inject-error\"\nregion = \"us-east-1\"\nerror = \"KMSInternalException\"\npercent = 5"),
        false,
    )
    .expect("valid");
    let s = crate::schedule::Schedule::expand(&e, 1);
    assert!(matches!(
        &s.occurrences[0].act,
        crate::schedule::Act::InjectError {
            error: InjectedError::Internal,
            operation: None,
            ..
        }
    ));
}

#[test]
fn node_hook_faults_refuse_bad_values_naming_their_field() {
    let refused = |lines: &str| field_of(&one_fault(lines));
    assert_eq!(
        refused("action = \"clock-jump\"\nregion = \"eu-west-1\"\nby = \"8d\"\nfor = \"5s\""),
        "fault[0].for",
        "a jump is never undone"
    );
    assert_eq!(
        refused("action = \"clock-jump\"\nregion = \"eu-west-1\""),
        "fault[0].by"
    );
    assert_eq!(
        refused("action = \"clock-jump\"\nregion = \"eu-west-1\"\nby = \"-8d\""),
        "fault[0].by",
        "a jump goes forward"
    );
    assert_eq!(
        refused("action = \"clock-jump\"\nby = \"8d\""),
        "fault[0].region"
    );
    assert_eq!(
        refused("action = \"clock-skew\"\nregion = \"mars\"\nby = \"2h\""),
        "fault[0].region"
    );
    assert_eq!(
        refused("action = \"clock-skew\"\nregion = \"us-east-1\""),
        "fault[0].by"
    );
    assert_eq!(
        refused("action = \"clock-skew\"\nregion = \"us-east-1\"\ndrift = \"1h\""),
        "fault[0].drift"
    );
    assert_eq!(
        refused("action = \"pause-sync\"\nregion = \"us-east-1\"\nby = \"1s\""),
        "fault[0].by",
        "a key the action does not take"
    );
    assert_eq!(
        refused("action = \"inject-error\"\nregion = \"us-east-1\"\nerror = \"NotFoundException\"\npercent = 5"),
        "fault[0].error"
    );
    assert_eq!(
        refused(
            "action = \"inject-error\"\nregion = \"us-east-1\"\nerror = \"ThrottlingException\""
        ),
        "fault[0].percent"
    );
    assert_eq!(
        refused("action = \"inject-error\"\nregion = \"us-east-1\"\nerror = \"ThrottlingException\"\npercent = 120"),
        "fault[0].percent"
    );
    assert_eq!(
        refused("action = \"inject-error\"\nregion = \"us-east-1\"\noperation = \"Frobnicate\"\nerror = \"ThrottlingException\"\npercent = 5"),
        "fault[0].operation"
    );
    assert_eq!(
        refused("action = \"inject-latency\"\nregion = \"us-east-1\""),
        "fault[0].delay"
    );
    assert_eq!(
        refused("action = \"inject-latency\"\nregion = \"us-east-1\"\ndelay = \"2m\""),
        "fault[0].delay"
    );
    assert_eq!(
        refused("action = \"clock-warp\"\nregion = \"us-east-1\""),
        "fault[0].action"
    );
}

proptest::proptest! {
    #[test]
    fn parsing_any_text_never_panics(s in "\\PC{0,200}") {
        let _ = Experiment::parse(&s, false);
    }

    #[test]
    fn mutating_a_valid_file_never_panics(i in 0usize..400, c in proptest::char::any()) {
        let mut chars: Vec<char> = MINIMAL.chars().collect();
        let i = i % chars.len();
        chars[i] = c;
        let text: String = chars.into_iter().collect();
        let _ = Experiment::parse(&text, true);
    }
}

#[test]
fn every_library_experiment_parses_in_full_and_quick() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the library") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        for quick in [false, true] {
            let e = Experiment::parse(&text, quick)
                .unwrap_or_else(|err| panic!("{} (quick {quick}): {err}", path.display()));
            assert!(
                e.workload.duration <= Duration::from_secs(120),
                "{}",
                path.display()
            );
        }
        seen += 1;
    }
    assert!(seen >= 8, "{seen} experiments");
}

#[test]
fn signing_and_mac_key_specs_default_and_are_checked() {
    let e = Experiment::parse(MINIMAL, false).expect("valid");
    assert_eq!(e.workload.sign_key_spec, "ECC_NIST_P256");
    assert_eq!(e.workload.signing_algorithm(), "ECDSA_SHA_256");
    assert_eq!(e.workload.mac_key_spec, "HMAC_256");
    assert_eq!(e.workload.mac_algorithm(), "HMAC_SHA_256");
    let text = MINIMAL.replace(
        "mix =",
        "sign_key_spec = \"RSA_3072\"\nmac_key_spec = \"HMAC_512\"\nmix =",
    );
    let e = Experiment::parse(&text, false).expect("valid");
    assert_eq!(e.workload.signing_algorithm(), "RSASSA_PSS_SHA_256");
    assert_eq!(e.workload.mac_algorithm(), "HMAC_SHA_512");
    let bad = MINIMAL.replace("mix =", "sign_key_spec = \"SYMMETRIC_DEFAULT\"\nmix =");
    assert_eq!(field_of(&bad), "workload.sign_key_spec");
    let bad = MINIMAL.replace("mix =", "mac_key_spec = \"HMAC_1\"\nmix =");
    match Experiment::parse(&bad, false) {
        Err(SpecError::Invalid { field, message }) => {
            assert_eq!(field, "workload.mac_key_spec");
            assert!(message.contains("HMAC_224, HMAC_256"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_operation_of_the_mix_is_read_and_a_hand_over_needs_a_replica() {
    let all = Operation::ALL
        .iter()
        .map(|o| format!("{} = 1", o.mix_key()))
        .collect::<Vec<_>>()
        .join(", ");
    let text = MINIMAL.replace("encrypt = 3, decrypt = 1", &all);
    let e = Experiment::parse(&text, false).expect("valid");
    assert_eq!(
        e.workload
            .mix
            .iter()
            .map(|(o, _)| *o)
            .collect::<Vec<_>>()
            .len(),
        Operation::ALL.len()
    );
    assert_eq!(e.workload.weight(Operation::UpdatePrimaryRegion), 1);
    assert_eq!(e.workload.weight(Operation::Sign), 1);
    assert_eq!(e.workload.multi_region_keys(), 2, "half of 4 keys");
    // One client Region: no Region to hand over to.
    let one = text.replace("mix =", "clients = [\"us-east-1\"]\nmix =");
    assert_eq!(field_of(&one), "workload.mix.update_primary_region");
    // No multi-Region key.
    let none = text.replace("mix =", "multi_region = 0.0\nmix =");
    assert_eq!(field_of(&none), "workload.mix.update_primary_region");
    // Without update_primary_region, both are fine.
    let fine = MINIMAL.replace(
        "mix =",
        "multi_region = 0.0\nclients = [\"us-east-1\"]\nmix =",
    );
    assert!(Experiment::parse(&fine, false).is_ok());
}
