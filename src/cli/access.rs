//! `wardops hash-password` and `wardops new-token`: what goes into the users file, so
//! that nobody writes a password or a token there.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use sha2::{Digest, Sha256};

use crate::access::sessions::random_token;

/// bcrypt's cost bounds; 12 (about a quarter of a second a check) is the default.
pub const COSTS: std::ops::RangeInclusive<u32> = 4..=16;

/// Reads a password (asked twice without echo on a terminal, else the first line of
/// standard input) and prints its bcrypt hash for `basic_auth_users`.
pub fn hash_password(cost: u32) -> ExitCode {
    if !COSTS.contains(&cost) {
        eprintln!(
            "--cost {cost} is out of range ({} to {})",
            COSTS.start(),
            COSTS.end()
        );
        return ExitCode::FAILURE;
    }
    let password = if std::io::stdin().is_terminal() {
        let read = || rpassword::prompt_password("Password: ");
        match (read(), rpassword::prompt_password("Again: ")) {
            (Ok(a), Ok(b)) if a == b => a,
            (Ok(_), Ok(_)) => {
                eprintln!("the two passwords differ; nothing printed");
                return ExitCode::FAILURE;
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("cannot read the password: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let mut line = String::new();
        if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
            eprintln!("cannot read the password from standard input: {e}");
            return ExitCode::FAILURE;
        }
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        eprintln!("the password is empty; nothing printed");
        return ExitCode::FAILURE;
    }
    // bcrypt reads 72 bytes; more would be ignored without a word.
    if password.len() > 72 {
        eprintln!(
            "the password is longer than 72 bytes, which bcrypt ignores past; choose a shorter one"
        );
        return ExitCode::FAILURE;
    }
    match bcrypt::hash(password, cost) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot hash the password: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Makes a new API token for `name`: prints the token (once: only its digest is kept)
/// and the users file entry that admits it.
pub fn new_token(name: &str, role: &str, regions: &[String]) -> ExitCode {
    if crate::access::Role::parse(role).is_none() {
        eprintln!("--role {role:?} is not one of viewer, operator, admin");
        return ExitCode::FAILURE;
    }
    let token = format!("wdo_{}", random_token());
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let regions = if regions.is_empty() {
        String::new()
    } else {
        format!(", regions: [{}]", regions.join(", "))
    };
    println!("{token}");
    eprintln!(
        "the token above is shown once; wardops keeps only its digest. Add to the users file:\n\napi_tokens:\n  {name}: {{ sha256: {digest}, role: {role}{regions} }}\n"
    );
    ExitCode::SUCCESS
}
