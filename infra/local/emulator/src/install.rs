//! Installs the Python tools the hub runs locally into `.hub/` at the versions pinned in
//! the repository (moto in `infra/local/requirements.txt`, schemathesis in
//! `tests/schemathesis/requirements.txt`), once, under a file lock (parallel test
//! binaries may ask at the same time).

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
};

use crate::EmulatorError;

/// How to run the Python that has the tool.
pub struct Python {
    pub program: PathBuf,
    pub env: Vec<(String, String)>,
}

pub fn ensure_moto(root: &Path) -> Result<Python, EmulatorError> {
    ensure_python_tool(root, "moto", "infra/local/requirements.txt")
}

/// Installs the requirements file `requirements` (relative to `root`) into
/// `.hub/<name>-venv` (or `.hub/<name>-pkgs` where `venv` is unavailable) unless that
/// exact file is installed already.
pub fn ensure_python_tool(
    root: &Path,
    name: &str,
    requirements: &str,
) -> Result<Python, EmulatorError> {
    let hub = root.join(".hub");
    std::fs::create_dir_all(&hub).map_err(|e| EmulatorError::Install(e.to_string()))?;
    let requirements_path = root.join(requirements);
    let requirements = std::fs::read_to_string(&requirements_path)
        .map_err(|e| EmulatorError::Install(format!("{}: {e}", requirements_path.display())))?;
    let lock = File::create(hub.join(format!("{name}-install.lock")))
        .map_err(|e| EmulatorError::Install(e.to_string()))?;
    lock.lock()
        .map_err(|e| EmulatorError::Install(e.to_string()))?;

    let venv = hub.join(format!("{name}-venv"));
    let venv_python = venv.join("bin/python");
    let pkgs = hub.join(format!("{name}-pkgs"));
    let venv_marker = venv.join(".requirements");
    let pkgs_marker = pkgs.join(".requirements");
    let installed =
        |marker: &Path| std::fs::read_to_string(marker).ok().as_deref() == Some(&requirements);

    if installed(&venv_marker) && venv_python.exists() {
        return Ok(Python {
            program: venv_python,
            env: Vec::new(),
        });
    }
    if installed(&pkgs_marker) {
        return Ok(target_python(&pkgs));
    }

    eprintln!(
        "hub: installing {name} into {} (first run only)...",
        hub.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    let venv_ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .is_ok_and(|o| o.status.success())
        && venv.join("bin/pip").exists();
    if venv_ok {
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements_path))?;
        write_marker(&venv_marker, &requirements)?;
        return Ok(Python {
            program: venv_python,
            env: Vec::new(),
        });
    }
    // No `venv` module (some distributions split it out): install into a plain directory.
    let _ = std::fs::remove_dir_all(&venv);
    let _ = std::fs::remove_dir_all(&pkgs);
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&pkgs)
        .arg("-r")
        .arg(&requirements_path))?;
    write_marker(&pkgs_marker, &requirements)?;
    Ok(target_python(&pkgs))
}

fn target_python(pkgs: &Path) -> Python {
    Python {
        program: PathBuf::from("python3"),
        env: vec![("PYTHONPATH".into(), pkgs.display().to_string())],
    }
}

fn run(command: &mut Command) -> Result<(), EmulatorError> {
    let output = command
        .output()
        .map_err(|e| EmulatorError::Install(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EmulatorError::Install(format!(
            "{:?} failed:\n{}",
            command,
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

fn write_marker(path: &Path, requirements: &str) -> Result<(), EmulatorError> {
    std::fs::write(path, requirements).map_err(|e| EmulatorError::Install(e.to_string()))
}
