//! The README runs as written: every ```` ```sh ```` block, in order, as pasted into a
//! shell at the top of a checkout while the stand-in runs (each block in a fresh
//! `bash -e -o pipefail`, so a block that only works after an earlier one's `export` is
//! caught). A block that cannot run here says why in its fence
//! (```` ```sh no-run: <reason> ````); the test lists them.
//!
//! The only rewrites: the stand-in's address for `http://127.0.0.1:3000`, and the
//! already built `hub-admin` for `cargo run -p hub-admin --`.

use hub_local::Options;

/// A shell block of the README: its first line number, fence info and text.
#[derive(Debug)]
struct Block {
    line: usize,
    info: String,
    text: String,
}

/// Every fenced block whose info string starts with `sh`, indented or not.
fn shell_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, usize, Vec<String>)> = None;
    for (index, line) in readme.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```")
                    && !info.is_empty()
                {
                    open = Some((index + 1, info.trim().to_owned(), indent, Vec::new()));
                }
            }
            Some((start, info, fence_indent, lines)) => {
                if trimmed == "```" {
                    if info == "sh" || info.starts_with("sh ") {
                        blocks.push(Block {
                            line: *start,
                            info: info.clone(),
                            text: lines.join("\n"),
                        });
                    }
                    open = None;
                } else {
                    let cut = (*fence_indent).min(line.len() - line.trim_start().len());
                    lines.push(line[cut..].to_owned());
                }
            }
        }
    }
    blocks
}

#[test]
fn every_readme_block_parses_and_the_skipped_ones_say_why() {
    let root = hub_emulator::project_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    assert!(blocks.len() >= 8, "{blocks:?}");
    for block in &blocks {
        if let Some(reason) = block.info.strip_prefix("sh no-run") {
            assert!(
                reason.trim_start_matches(':').trim().len() > 5,
                "README.md:{}: say why it cannot run",
                block.line
            );
        } else {
            assert_eq!(block.info, "sh", "README.md:{}", block.line);
        }
        for placeholder in ["<id>", "<arn>", "<customer id>", "<account id>"] {
            assert!(
                block.info != "sh" || !block.text.contains(placeholder),
                "README.md:{}: {placeholder} is a redirect to a shell",
                block.line
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_runs_as_written() {
    let root = hub_emulator::project_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let admin = tokio::task::spawn_blocking(hub_tests::hub_admin_binary)
        .await
        .unwrap();

    // A checkout as a newcomer has it: the repository's files, and `.hub/` as the
    // stand-in leaves it (demo files, local.env).
    let work = std::env::temp_dir().join(format!("hub-readme-{}", shared::secrets::random_hex16()));
    std::fs::create_dir_all(work.join(".hub")).unwrap();
    for entry in ["events", "infra", "tests", "Cargo.toml"] {
        std::os::unix::fs::symlink(root.join(entry), work.join(entry)).unwrap();
    }
    let prefix = format!("readme-{}", &shared::secrets::random_hex16()[..8]);
    let mut options = Options::for_tests(&prefix);
    options.demo_file = Some(work.join(".hub/demo-partner.json"));
    let emulator = hub_local::start_emulator(true).await.expect("emulator");
    let stand_in = hub_local::start(options, emulator).await.expect("stand-in");
    std::fs::write(work.join(".hub/local.env"), stand_in.env_lines()).unwrap();

    let mut ran = 0;
    for block in &blocks {
        if let Some(reason) = block.info.strip_prefix("sh no-run") {
            println!(
                "README.md:{}: not run ({})",
                block.line,
                reason.trim_start_matches(':').trim()
            );
            continue;
        }
        let script = block
            .text
            .replace("http://127.0.0.1:3000", &stand_in.base_url)
            .replace("cargo run -q -p hub-admin --", &admin.display().to_string())
            .replace("cargo run -p hub-admin --", &admin.display().to_string());
        let output = tokio::process::Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", &script])
            .current_dir(&work)
            .output()
            .await
            .expect("bash");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "README.md:{} failed ({}):\n{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            block.line,
            output.status,
            block.text
        );
        println!("README.md:{}: ok", block.line);
        ran += 1;
    }
    stand_in.stop().await;
    let _ = std::fs::remove_dir_all(&work);
    assert!(ran >= 6, "{ran} blocks ran");
}
