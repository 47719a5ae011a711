//! The short fuzz run on stable: replays every committed corpus input of
//! each target, then feeds it mutations of the corpus for a fixed time or
//! number of executions. No coverage feedback (that is what the libFuzzer
//! runs are for); the mutations lean on what breaks framing code instead:
//! lengths at the 7/16/64-bit edges, bit flips in headers, splices.
//!
//!     smoke [--seconds S] [--iterations N] [--seed X] [TARGET...]
//!     smoke --replay TARGET FILE...
//!
//! A failure prints the target, the input as hex and the panic, saves the
//! input under fuzz/artifacts/TARGET/ and exits non-zero.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gun_nif_fuzz::rng::{hash, Rng};
use gun_nif_fuzz::{Target, TARGETS};

/// Longer inputs only slow the run down: the targets build long frames
/// from short inputs themselves.
const MAX_INPUT: usize = 8192;

/// Mutants kept as bases for further mutation, beside the corpus.
const POOL_EXTRA: usize = 256;

struct Options {
    seconds: f64,
    iterations: Option<u64>,
    seed: u64,
    targets: Vec<String>,
    replay: Option<(String, Vec<PathBuf>)>,
}

fn usage() -> ExitCode {
    eprintln!("usage: smoke [--seconds S] [--iterations N] [--seed X] [TARGET...]");
    eprintln!("       smoke --replay TARGET FILE...");
    ExitCode::from(2)
}

fn parse_args() -> Option<Options> {
    let mut options = Options {
        seconds: 8.0,
        iterations: None,
        seed: std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            }),
        targets: Vec::new(),
        replay: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = args.next()?.parse().ok()?,
            "--iterations" => options.iterations = Some(args.next()?.parse().ok()?),
            "--seed" => options.seed = args.next()?.parse().ok()?,
            "--replay" => {
                let target = args.next()?;
                options.replay = Some((target, args.by_ref().map(PathBuf::from).collect()));
            }
            name if !name.starts_with('-') => options.targets.push(name.to_string()),
            _ => return None,
        }
    }
    Some(options)
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("corpus").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    // Sorted, so that a seed means the same run on every machine.
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs one input; on a panic reports it, keeps the input, and says so.
fn run_one(name: &str, target: Target, input: &[u8], what: &str) -> bool {
    if std::panic::catch_unwind(|| target(input)).is_ok() {
        return true;
    }
    eprintln!("\n!! {name} failed on {what} ({} bytes)", input.len());
    eprintln!("!! input (hex): {}", hex(input));
    let dir = fuzz_dir().join("artifacts").join(name);
    let path = dir.join(format!("smoke-crash-{:016x}", hash(input)));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => eprintln!(
            "!! saved as {}; replay with: sh scripts/fuzz.sh replay {name} {}",
            path.display(),
            path.display()
        ),
        Err(e) => eprintln!("!! could not save it: {e}"),
    }
    false
}

/// Lengths that sit on the edges of the three length forms, in the forms
/// the targets read them: a frame header's 7-bit, 16-bit and 64-bit
/// big-endian fields, and the ops' one-byte and little-endian forms.
const LENGTHS: &[&[u8]] = &[
    &[125],
    &[126],
    &[127],
    &[126, 0x00, 0x7d],
    &[126, 0x00, 0x7e],
    &[126, 0xff, 0xff],
    &[127, 0, 0, 0, 0, 0, 1, 0, 0],
    &[127, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
    &[127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[127, 0x80, 0, 0, 0, 0, 0, 0, 0],
    &[127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0xfe, 0xff, 0xff],
    &[0xfe, 0x00, 0x00],
    &[0xfe, 0x7d, 0x00],
    &[0xc8],
    &[0xcb],
];

const BYTES: &[u8] = &[
    0x00, 0x01, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8a, 0xc0, 0xc1, 0xed, 0xf4, 0xff,
];

fn mutate(rng: &mut Rng, base: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut data = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(10) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = BYTES[rng.below(BYTES.len())];
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                data.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below(len - at);
                let chunk = data[at..at + n].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, chunk);
            }
            5 => {
                let other = &pool[rng.below(pool.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let n = 1 + rng.below(other.len() - from);
                    let at = rng.below(len + 1);
                    let cut = if rng.chance(2) { len } else { at };
                    data.truncate(cut);
                    data.splice(
                        at.min(cut)..at.min(cut),
                        other[from..from + n].iter().copied(),
                    );
                }
            }
            6 => {
                let at = rng.below(len + 1);
                let field = LENGTHS[rng.below(LENGTHS.len())];
                // Over the bytes there, or in between them.
                let end = if rng.chance(2) {
                    (at + field.len()).min(len)
                } else {
                    at
                };
                data.splice(at..end, field.iter().copied());
            }
            7 if len > 0 => data.truncate(rng.below(len)),
            8 if len > 0 => {
                let at = rng.below(len);
                data[at] = data[at].wrapping_add(rng.below(9) as u8).wrapping_sub(4);
            }
            _ => {
                let at = rng.below(len + 1);
                data.insert(at, rng.next_u64() as u8);
            }
        }
    }
    data.truncate(MAX_INPUT);
    data
}

struct Report {
    corpus: usize,
    executions: u64,
    elapsed: Duration,
}

fn fuzz(name: &str, target: Target, options: &Options, seed: u64) -> Option<Report> {
    let corpus = read_corpus(name);
    for (i, input) in corpus.iter().enumerate() {
        if !run_one(name, target, input, &format!("corpus input {i}")) {
            return None;
        }
    }
    let mut pool = corpus.clone();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let kept = pool.len();
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(options.seconds);
    let mut executions = 0u64;
    loop {
        match options.iterations {
            Some(n) if executions >= n => break,
            None if executions.is_multiple_of(64) && start.elapsed() >= deadline => break,
            _ => {}
        }
        let base = &pool[rng.below(pool.len())];
        let input = mutate(&mut rng, base, &pool);
        let what = format!("mutation {executions} of seed {seed}");
        if !run_one(name, target, &input, &what) {
            return None;
        }
        executions += 1;
        // Some mutants become bases, for mutations several steps deep.
        if rng.chance(16) {
            if pool.len() < kept + POOL_EXTRA {
                pool.push(input);
            } else {
                let slot = kept + rng.below(POOL_EXTRA);
                pool[slot] = input;
            }
        }
    }
    Some(Report {
        corpus: corpus.len(),
        executions,
        elapsed: start.elapsed(),
    })
}

fn replay(name: &str, files: &[PathBuf]) -> ExitCode {
    let Some(&(_, target)) = TARGETS.iter().find(|(n, _)| *n == name) else {
        eprintln!("unknown target {name}");
        return ExitCode::from(2);
    };
    let mut ok = true;
    for file in files {
        match std::fs::read(file) {
            Ok(input) => ok &= run_one(name, target, &input, &file.display().to_string()),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ok = false;
            }
        }
    }
    if ok {
        println!("{name}: {} input(s) passed", files.len());
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let Some(options) = parse_args() else {
        return usage();
    };
    if let Some((name, files)) = &options.replay {
        return replay(name, files);
    }
    let selected: Vec<_> = TARGETS
        .iter()
        .filter(|(name, _)| options.targets.is_empty() || options.targets.iter().any(|t| t == name))
        .collect();
    if let Some(unknown) = options
        .targets
        .iter()
        .find(|t| !TARGETS.iter().any(|(name, _)| name == t))
    {
        eprintln!("unknown target {unknown}");
        return ExitCode::from(2);
    }
    println!(
        "smoke fuzz: seed {} (FUZZ_SEED={} to repeat)",
        options.seed, options.seed
    );
    let mut total = 0;
    for (i, &&(name, target)) in selected.iter().enumerate() {
        let seed = options.seed.wrapping_add(i as u64);
        let Some(report) = fuzz(name, target, &options, seed) else {
            return ExitCode::FAILURE;
        };
        let secs = report.elapsed.as_secs_f64();
        println!(
            "{name}: {} corpus inputs replayed, {} mutated executions in {secs:.1} s ({:.0}/s)",
            report.corpus,
            report.executions,
            report.executions as f64 / secs.max(1e-9)
        );
        total += report.executions;
    }
    println!("smoke fuzz: {total} executions, no failure");
    ExitCode::SUCCESS
}
