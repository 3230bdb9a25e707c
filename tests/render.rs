//! `learntrac render`: snapshots of the rendered trees, determinism, idempotent writes,
//! template overrides.

mod common;

use common::{Cli, Project, files_under, render_repo_env};

fn snapshot_tree(env: &str) {
    let out = render_repo_env(env);
    let files = files_under(out.path());
    assert!(
        files.contains(&"terraform/main.tf".to_string()),
        "{files:?}"
    );
    for rel in files.iter().filter(|f| !f.starts_with(".learntrac")) {
        let text = std::fs::read_to_string(out.path().join(rel)).expect("read rendered file");
        let name = format!("{env}__{}", rel.replace('/', "__"));
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn dev_tree_snapshot() {
    snapshot_tree("dev");
}

#[test]
fn prod_tree_snapshot() {
    snapshot_tree("prod");
}

#[test]
fn rendered_tree_has_every_part() {
    let out = render_repo_env("dev");
    let files = files_under(out.path());
    for expected in [
        "docker/learntrac.Dockerfile",
        "docker/trac.Dockerfile",
        "terraform/main.tf",
        "terraform/modules/alb/main.tf",
        "terraform/modules/ecs/main.tf",
        "terraform/modules/rds/main.tf",
        "terraform/monitoring.tf",
        "terraform/outputs.tf",
        "terraform/providers.tf",
        "terraform/redis.tf",
        "terraform/variables.tf",
        "terraform/versions.tf",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} missing from {files:?}"
        );
    }
}

#[test]
fn output_is_deterministic_and_rewrites_nothing_when_unchanged() {
    let out = tempfile::tempdir().expect("temp dir");
    let render = || {
        Cli::new()
            .args(["render", "prod", "-o", "json", "--out"])
            .args([out.path()])
            .run()
    };
    let first = render();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let snapshot: Vec<(String, Vec<u8>)> = files_under(out.path())
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(out.path().join(&f)).expect("read");
            (f, bytes)
        })
        .collect();
    let second = render();
    let report: serde_json::Value = serde_json::from_str(&second.stdout).expect("JSON report");
    assert_eq!(
        report["written"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert_eq!(
        report["unchanged"].as_array().map(Vec::len),
        Some(22),
        "{report}"
    );
    for (f, bytes) in snapshot {
        assert_eq!(
            std::fs::read(out.path().join(&f)).expect("read"),
            bytes,
            "{f} changed"
        );
    }
}

#[test]
fn default_output_is_dot_learntrac_env() {
    let project = Project::new();
    let run = Cli::new()
        .root(project.path())
        .args(["render", "dev"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        project
            .path()
            .join(".learntrac/dev/terraform/main.tf")
            .is_file()
    );
    assert!(run.stderr.contains("serves HTTP only"), "{}", run.stderr);
}

#[test]
fn files_a_template_no_longer_produces_are_removed() {
    let project = Project::new();
    let overrides = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        overrides.path().join("extra.txt.j2"),
        "env={{ env.environment }}\n",
    )
    .expect("write");
    let out = project.path().join("out");
    let with_extra = Cli::new()
        .root(project.path())
        .args(["render", "dev", "--out"])
        .args([&out])
        .args(["--templates"])
        .args([overrides.path()])
        .run();
    assert_eq!(with_extra.code, 0, "{}", with_extra.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("extra.txt")).expect("extra"),
        "env=dev\n"
    );
    // A hand-made file in the output folder is not ours to delete.
    std::fs::write(out.join("terraform/terraform.tfvars"), "keep = true\n").expect("write");

    let plain = Cli::new()
        .root(project.path())
        .args(["render", "dev", "-o", "json", "--out"])
        .args([&out])
        .run();
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let report: serde_json::Value = serde_json::from_str(&plain.stdout).expect("JSON report");
    assert_eq!(report["removed"], serde_json::json!(["extra.txt"]));
    assert!(!out.join("extra.txt").exists());
    assert!(out.join("terraform/terraform.tfvars").exists());
}

#[test]
fn a_template_override_replaces_the_builtin_one() {
    let project = Project::new();
    let overrides = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(overrides.path().join("terraform")).expect("mkdir");
    std::fs::write(
        overrides.path().join("terraform/outputs.tf.j2"),
        "output \"prefix\" {\n  value = {{ prefix | hcl }}\n}\n",
    )
    .expect("write");
    let out = project.path().join("out");
    let run = Cli::new()
        .root(project.path())
        .args(["render", "dev", "--out"])
        .args([&out])
        .args(["--templates"])
        .args([overrides.path()])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("terraform/outputs.tf")).expect("outputs"),
        "output \"prefix\" {\n  value = \"learntrac-dev\"\n}\n"
    );
}

#[test]
fn an_undefined_template_variable_is_an_error_not_an_empty_string() {
    let project = Project::new();
    let overrides = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        overrides.path().join("broken.tf.j2"),
        "x = {{ env.no_such_key }}\n",
    )
    .expect("write");
    let run = Cli::new()
        .root(project.path())
        .args(["render", "dev", "--templates"])
        .args([overrides.path()])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("template broken.tf.j2: line 1:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("undefined"), "{}", run.stderr);
    assert!(
        !project.path().join(".learntrac/dev").exists(),
        "nothing is written on error"
    );
}

#[test]
fn a_template_that_would_leak_a_secret_is_refused() {
    let project = Project::new();
    let overrides = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(overrides.path().join("terraform")).expect("mkdir");
    std::fs::write(
        overrides.path().join("terraform/leak.tf.j2"),
        "module \"x\" {\n  environment = {\n    DB_PASSWORD = \"{{ env.database.name }}\"\n  }\n}\n",
    )
    .expect("write");
    let run = Cli::new()
        .root(project.path())
        .args(["render", "dev", "--templates"])
        .args([overrides.path()])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "terraform/leak.tf:3: task environment variable `DB_PASSWORD` looks like a secret"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !project.path().join(".learntrac/dev").exists(),
        "nothing is written"
    );
}

#[test]
fn rendered_trees_pass_the_secret_audit_and_reference_secrets_by_name() {
    for env in ["dev", "prod", "local"] {
        let out = render_repo_env(env);
        let main = std::fs::read_to_string(out.path().join("terraform/main.tf")).expect("main.tf");
        // Every secret is an SSM parameter path, never a value.
        let mut in_secrets = false;
        let mut seen = 0;
        for line in main.lines() {
            let t = line.trim();
            if t == "secret_parameters = {" {
                in_secrets = true;
            } else if in_secrets && t == "}" {
                in_secrets = false;
            } else if in_secrets {
                let value = t.split_once('=').map(|(_, v)| v.trim()).unwrap_or_default();
                assert!(value.starts_with("\"/"), "{env}: {t}");
                seen += 1;
            }
        }
        assert!(seen >= 2, "{env}: expected secrets for both services");
        // Each app logs in as its own role with its own password; the master password
        // goes only to the db-roles container (its secrets block, keys aligned).
        let secret_lines = |key: &str, value: &str| {
            main.lines()
                .filter(|l| {
                    let mut kv = l.split('=').map(str::trim);
                    kv.next() == Some(key) && kv.next() == Some(value)
                })
                .count()
        };
        for (key, param, n) in [
            ("DATABASE_PASSWORD", "db/trac-password", 1),
            ("DATABASE_PASSWORD", "db/service-password", 1),
            ("DATABASE_PASSWORD", "db/password", 2),
            ("TRAC_DB_PASSWORD", "db/trac-password", 2),
            ("SERVICE_DB_PASSWORD", "db/service-password", 2),
        ] {
            assert_eq!(
                secret_lines(key, &format!("\"/learntrac/{env}/{param}\"")),
                n,
                "{env}: {key} = {param}"
            );
        }
        for user in ["\"trac\"", "\"learntrac_service\""] {
            assert_eq!(
                main.lines()
                    .filter(|l| l.trim().starts_with("DATABASE_USER") && l.trim().ends_with(user))
                    .count(),
                1,
                "{env}: {user}"
            );
        }
        let rds =
            std::fs::read_to_string(out.path().join("terraform/modules/rds/main.tf")).expect("rds");
        assert!(
            rds.contains("ephemeral \"aws_ssm_parameter\" \"master_password\""),
            "{env}"
        );
        assert!(rds.contains("password_wo "), "{env}: write-only password");
        assert!(
            !rds.contains("password ="),
            "{env}: no plain password argument"
        );
    }
}

#[test]
fn redis_takes_an_auth_token_from_ssm_and_only_the_services_tasks() {
    for env in ["dev", "prod"] {
        let out = render_repo_env(env);
        let read = |f: &str| std::fs::read_to_string(out.path().join(f)).expect(f);
        let redis = read("terraform/redis.tf");
        assert!(
            redis.contains(&format!(
                "data \"aws_ssm_parameter\" \"redis_auth_token\" {{\n  name = \"/learntrac/{env}/redis/auth-token\""
            )),
            "{env}: {redis}"
        );
        assert!(
            redis.contains(
                "auth_token                 = data.aws_ssm_parameter.redis_auth_token.value"
            ),
            "{env}"
        );
        assert!(redis.contains("transit_encryption_enabled = true"), "{env}");
        assert!(redis.contains("redis_from_learntrac"), "{env}");
        assert!(
            !redis.contains("redis_from_trac"),
            "{env}: Trac does not use Redis"
        );
        let main = read("terraform/main.tf");
        let trac = main
            .split("module \"trac_service\"")
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .expect("trac's module");
        assert!(!trac.contains("REDIS"), "{env}: {trac}");
        let service = main
            .split("module \"learntrac_service\"")
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .expect("the service's module");
        let token = format!("\"/learntrac/{env}/redis/auth-token\"");
        assert!(
            service.lines().any(|l| {
                let mut kv = l.split('=').map(str::trim);
                kv.next() == Some("REDIS_AUTH_TOKEN") && kv.next() == Some(token.as_str())
            }),
            "{env}: {service}"
        );
        assert!(service.contains("REDIS_URL"), "{env}");
    }
}

#[test]
fn render_writes_and_removes_only_inside_its_output_folder() {
    let project = Project::new();
    let out = project.path().join("out");
    let outside = tempfile::tempdir().expect("temp dir");
    let render = || {
        Cli::new()
            .root(project.path())
            .args(["render", "dev", "-o", "json", "--out"])
            .args([&out])
            .run()
    };
    let first = render();
    assert_eq!(first.code, 0, "{}", first.stderr);

    // A manifest that names files outside the folder: they must survive.
    let beside = project.path().join("victim.txt");
    let far = outside.path().join("victim.txt");
    std::fs::write(&beside, "keep").expect("write");
    std::fs::write(&far, "keep").expect("write");
    let manifest = out.join(".learntrac-rendered");
    let mut listing = std::fs::read_to_string(&manifest).expect("manifest");
    listing.push_str(&format!(
        "../victim.txt\n{}\nterraform/../../victim.txt\n",
        far.display()
    ));
    std::fs::write(&manifest, listing).expect("write manifest");
    // A link planted where a rendered file goes: replaced, not written through.
    let target = outside.path().join("target.tf");
    std::fs::write(&target, "outside\n").expect("write");
    let main_tf = out.join("terraform/main.tf");
    std::fs::remove_file(&main_tf).expect("remove");
    std::os::unix::fs::symlink(&target, &main_tf).expect("symlink");

    let second = render();
    assert_eq!(second.code, 0, "{}", second.stderr);
    let report: serde_json::Value = serde_json::from_str(&second.stdout).expect("JSON report");
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    assert_eq!(std::fs::read_to_string(&beside).expect("beside"), "keep");
    assert_eq!(std::fs::read_to_string(&far).expect("far"), "keep");
    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        "outside\n"
    );
    let meta = std::fs::symlink_metadata(&main_tf).expect("main.tf");
    assert!(meta.is_file(), "main.tf is a regular file again");
    assert!(
        std::fs::read_to_string(&main_tf)
            .expect("main.tf")
            .contains("module"),
        "main.tf rendered"
    );

    // A rendered folder replaced by a link to elsewhere: refused, nothing written there.
    let docker_dir = out.join("docker");
    std::fs::remove_dir_all(&docker_dir).expect("remove");
    let elsewhere = outside.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, &docker_dir).expect("symlink");
    let third = render();
    assert_eq!(third.code, 2, "{}", third.stderr);
    assert!(
        third.stderr.contains("is a symbolic link"),
        "{}",
        third.stderr
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).expect("elsewhere").count(),
        0,
        "nothing was written through the link"
    );
}

#[test]
fn the_task_role_may_hear_and_speak_only_where_voice_is_aws() {
    let module = |main: &str, name: &str| {
        main.split(&format!("module \"{name}_service\""))
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .map(str::to_string)
            .expect("the module")
    };
    // dev's voice is off: neither service's tasks get the permissions.
    let out = render_repo_env("dev");
    let main = std::fs::read_to_string(out.path().join("terraform/main.tf")).expect("main.tf");
    assert!(!main.contains("speech"), "dev: no speech permissions");
    // VOICE_ENGINE=aws: the service's task role gets them, Trac's does not.
    let project = Project::new();
    project.edit(
        "dev",
        "LOG_FORMAT: json",
        "LOG_FORMAT: json\n      VOICE_ENGINE: aws",
    );
    let out = project.path().join("out");
    let run = Cli::new()
        .root(project.path())
        .args(["render", "dev", "--out"])
        .args([&out])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let main = std::fs::read_to_string(out.join("terraform/main.tf")).expect("main.tf");
    let service = module(&main, "learntrac");
    assert!(!module(&main, "trac").contains("speech"));
    insta::assert_snapshot!("dev_voice_aws__learntrac_service_module", service);
    let ecs = std::fs::read_to_string(out.join("terraform/modules/ecs/main.tf")).expect("ecs");
    let policy = ecs
        .split("resource \"aws_iam_role_policy\" \"speech\"")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .expect("the speech policy");
    assert!(
        policy.contains("count = var.speech ? 1 : 0")
            && policy.contains(
                "Action   = [\"transcribe:StartStreamTranscription\", \"polly:SynthesizeSpeech\"]"
            )
            && policy.contains("role = aws_iam_role.task.id"),
        "{policy}"
    );
}
