//! A mutation fuzzer over the two configuration readers (an inventory file, the
//! settings file), run as a plain test so that every CI run fuzzes.
//!
//! Seeds: the shipped files (`config/`) and a small demo inventory
//! (`wardops::demo::write`). Each input is a seed with a few mutations: characters of
//! every class YAML treats apart inserted, replaced or deleted, lines duplicated,
//! dropped or swapped, a chunk repeated (nesting, long lines), the text cut short, two
//! seeds spliced. For every input, both readers must:
//!
//! - return (never panic) in CPU time roughly linear in the input's length;
//! - allocate at most a bounded multiple of it (a counting allocator watches);
//! - report every error as `file:line:column: message`, the place within the file.
//!
//! Deterministic: `WARDOPS_FUZZ_SEED` changes the seed (default 1), `WARDOPS_FUZZ_INPUTS`
//! the number of inputs (default 10,000). An input that fails is written to
//! `target/fuzz-failure.yaml` and named in the failure.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use wardops::config::load::{self, Source};
use wardops::config::{ConfigErrors, Env, ProbeSettings, Settings};

/// Counts each thread's live bytes and their peak, so that one input's peak is its own.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// This thread's CPU time: what a reader costs, whatever else the machine runs.
fn cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) },
        0
    );
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The characters YAML, libyaml or the fast path treat apart, and some plain ones.
const CHARACTERS: &[char] = &[
    '\u{0}',
    '\u{1}',
    '\u{1b}',
    '\u{7f}',
    '\t',
    '\r',
    '\n',
    '\u{85}',
    '\u{2028}',
    '\u{2029}',
    '\u{feff}',
    '\u{80}',
    '\u{a0}',
    '\u{e9}',
    '\u{fffe}',
    '\u{1f600}',
    '"',
    '\'',
    '#',
    ':',
    '{',
    '}',
    '[',
    ']',
    ',',
    '&',
    '*',
    '!',
    '|',
    '>',
    '%',
    '@',
    '`',
    '-',
    '?',
    '~',
    ' ',
    ' ',
    'a',
    '0',
    '9',
    '.',
    '_',
    '/',
    '\\',
];

/// Fragments that mean something to YAML or to the grammar.
const FRAGMENTS: &[&str] = &[
    "18446744073709551615",
    "99999999999999999999",
    "s1s",
    "h",
    "ms",
    "1e309",
    "NaN",
    "-0",
    "::ffff:127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "ff02::1",
    "&a ",
    "*a",
    "!b,",
    "!!str ",
    "<<: ",
    "---\n",
    "...\n",
    "? ",
    "{ ",
    "[",
    "\"\\u0000\"",
    "'",
    "|\n",
    ">-\n",
    "~",
    "null",
    "labels: { a-b: 1, a_b: 2 }",
    "probe: { interval: 18446744073709551615s1s }",
    "%YAML 1.1\n",
    "\u{2028}",
    "#",
    "\n  ",
    "\n- ",
    ": ",
];

/// Values written over a value of the file: the edges of every range and type.
const VALUES: &[&str] = &[
    "18446744073709551615s1s",
    "18446744073709551615h",
    "99999999999999999999ms",
    "0s",
    "1ms",
    "3000000000h",
    "100000000d",
    "0d",
    "18446744073709551615",
    "4294967296",
    "0",
    "-1",
    "1.5",
    "NaN",
    "inf",
    "1e309",
    "0.0.0.0",
    "::",
    "255.255.255.255",
    "224.0.0.1",
    "::ffff:127.0.0.1",
    "127.0.0.1",
    "\"a\\u0001b\"",
    "\"\"",
    "~",
    "[]",
    "{}",
    "!b",
    "&x 1",
    "*x",
    "mysql://x",
    "http://",
    "victoria:8428",
    "[::1]:0",
    "127.0.0.1:99999",
];

struct Fuzz {
    rng: Xoshiro256PlusPlus,
    seeds: Vec<String>,
}

impl Fuzz {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }

    /// A char boundary of `text` near byte `at`.
    fn boundary(text: &str, mut at: usize) -> usize {
        at = at.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    fn input(&mut self) -> String {
        let seed = self.below(self.seeds.len());
        let text = self.seeds[seed].clone();
        // A third of the inputs change one value and nothing else, so that they keep
        // their shape and reach the checks of values (ranges, durations, addresses).
        if self.chance(0.35) {
            return self.replace_value(text);
        }
        (0..1 + self.below(4)).fold(text, |text, _| self.mutate(text))
    }

    /// One value (what follows a `: `) replaced by one of [`VALUES`].
    fn replace_value(&mut self, text: String) -> String {
        let colons: Vec<usize> = text.match_indices(": ").map(|(i, _)| i + 2).collect();
        if colons.is_empty() {
            return text;
        }
        let start = colons[self.below(colons.len())];
        let end = text[start..]
            .find([',', '}', '\n', ' '])
            .map_or(text.len(), |i| start + i);
        let value = VALUES[self.below(VALUES.len())];
        format!("{}{value}{}", &text[..start], &text[end..])
    }

    fn mutate(&mut self, text: String) -> String {
        let at = Self::boundary(&text, self.below(text.len() + 1));
        let to = Self::boundary(&text, at + self.below(64));
        let (head, rest) = text.split_at(at);
        match self.below(12) {
            10 | 11 => self.replace_value(text),
            0..=2 => {
                let c = CHARACTERS[self.below(CHARACTERS.len())];
                let skip =
                    usize::from(self.chance(0.5)) * rest.chars().next().map_or(0, char::len_utf8);
                format!("{head}{c}{}", &rest[skip..])
            }
            3 => format!("{head}{}", &text[to..]),
            4 => {
                let f = FRAGMENTS[self.below(FRAGMENTS.len())];
                format!("{head}{f}{rest}")
            }
            5 => {
                // A chunk repeated: deep nesting, long lines, many keys.
                let most = if self.chance(0.1) { 2000 } else { 20 };
                let times = 2 + self.below(most);
                format!("{head}{}{rest}", text[at..to].repeat(times))
            }
            6 => {
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                let (i, j) = (self.below(lines.len()), self.below(lines.len()));
                let mut out: Vec<&str> = lines.clone();
                match self.below(3) {
                    0 => out.insert(i, lines.get(j).copied().unwrap_or("")),
                    1 if !out.is_empty() => {
                        out.remove(i);
                    }
                    _ if !out.is_empty() => {
                        let last = out.len() - 1;
                        out.swap(i.min(last), j.min(last))
                    }
                    _ => {}
                }
                out.concat()
            }
            7 => head.to_string(),
            8 => {
                let other = self.below(self.seeds.len());
                let at = self.below(self.seeds[other].len() + 1);
                let other = &self.seeds[other];
                format!("{head}{}", &other[Self::boundary(other, at)..])
            }
            _ => {
                // Indentation changed on one line.
                let line_start = head.rfind('\n').map_or(0, |i| i + 1);
                let spaces = " ".repeat(self.below(9));
                format!("{}{spaces}{}", &text[..line_start], &text[line_start..])
            }
        }
    }
}

fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = vec![std::fs::read_to_string(root.join("config/wardops.yaml")).unwrap()];
    for file in load::list_files(&root.join("config/inventory")).unwrap() {
        seeds.push(std::fs::read_to_string(file).unwrap());
    }
    let demo = tempfile::tempdir().unwrap();
    wardops::demo::write(demo.path(), 40, None).unwrap();
    seeds.push(std::fs::read_to_string(demo.path().join("wardops.yaml")).unwrap());
    for file in load::list_files(&demo.path().join("inventory")).unwrap() {
        seeds.push(std::fs::read_to_string(file).unwrap());
    }
    seeds
}

/// The lines of `text` as libyaml breaks them, each as its length in characters.
fn line_lengths(text: &str) -> Vec<u64> {
    let mut lines = vec![0u64];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            chars.next();
        }
        if matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            lines.push(0);
        } else {
            *lines.last_mut().unwrap() += 1;
        }
    }
    if lines.len() > 1 && *lines.last().unwrap() == 0 {
        lines.pop();
    }
    lines
}

/// Every error is `file:line:column: message` with the place within `text`.
fn check_places(file: &Path, text: &str, errors: &ConfigErrors) -> Result<(), String> {
    let lines = line_lengths(text);
    for e in &errors.0 {
        let shown = e.to_string();
        let (line, column) = (e.place.line, e.place.column);
        if *e.place.file != *file || line == 0 || column == 0 {
            return Err(format!("no file:line:column: {shown}"));
        }
        let within = lines
            .get(line as usize - 1)
            .is_some_and(|&len| column <= len + 1);
        if !within {
            return Err(format!("a place past the end of its line or file: {shown}"));
        }
    }
    Ok(())
}

/// Runs both readers over `text`; what went wrong, if anything.
fn run(text: &str) -> Result<(), String> {
    let inventory = PathBuf::from("fuzz/inventory.yaml");
    let settings = PathBuf::from("fuzz/wardops.yaml");
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let started = cpu_time();
    let outcome = std::panic::catch_unwind(|| {
        let source = Source {
            path: inventory.clone(),
            text: text.to_string(),
        };
        let built = load::build_inventory(std::slice::from_ref(&source), &ProbeSettings::default());
        let env = Env {
            listen: None,
            database_url: None,
            users_file: None,
            data_dir: None,
            cluster: Default::default(),
        };
        let read = Settings::parse(&settings, text, &env);
        (built.err(), read.err())
    });
    let cpu = cpu_time() - started;
    let peak = (PEAK.with(Cell::get) - base).max(0) as usize;
    let (inventory_errors, settings_errors) = outcome.map_err(|_| "a panic".to_string())?;
    if let Some(errors) = &inventory_errors {
        check_places(&inventory, text, errors)?;
    }
    if let Some(errors) = &settings_errors {
        check_places(&settings, text, errors)?;
    }
    // Generous, for a debug build on a loaded machine: what is checked is the shape
    // (linear), not the speed. Debug reads a few MB/s.
    let budget = Duration::from_millis(250) + Duration::from_micros(5) * text.len() as u32;
    if cpu > budget {
        return Err(format!(
            "{cpu:?} of CPU for {} bytes (budget {budget:?})",
            text.len()
        ));
    }
    let allowed = (32 << 20) + 400 * text.len();
    if peak > allowed {
        return Err(format!(
            "{peak} bytes allocated for {} bytes of input",
            text.len()
        ));
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

#[test]
fn the_readers_survive_ten_thousand_mutated_files() {
    let seed = env_number("WARDOPS_FUZZ_SEED", 1);
    let inputs = env_number("WARDOPS_FUZZ_INPUTS", 10_000) as usize;
    let seeds = seeds();
    let threads = 2;
    let started = Instant::now();
    let results: Vec<(usize, usize, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    let mut fuzz = Fuzz {
                        rng: Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(1000) + t as u64),
                        seeds,
                    };
                    let (mut bytes, mut done) = (0, 0);
                    let cpu = cpu_time();
                    for i in 0..inputs / threads + usize::from(t < inputs % threads) {
                        let text = fuzz.input();
                        bytes += text.len();
                        if let Err(problem) = run(&text) {
                            let out = Path::new(env!("CARGO_MANIFEST_DIR"))
                                .join("target")
                                .join("fuzz-failure.yaml");
                            let _ = std::fs::write(&out, &text);
                            panic!(
                                "seed {seed}, thread {t}, input {i}: {problem}; the input is in {}",
                                out.display()
                            );
                        }
                        done += 1;
                    }
                    (done, bytes, cpu_time() - cpu)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let count: usize = results.iter().map(|r| r.0).sum();
    let bytes: usize = results.iter().map(|r| r.1).sum();
    let cpu: Duration = results.iter().map(|r| r.2).sum();
    eprintln!(
        "fuzz: seed {seed}, {count} inputs, {} KiB, {cpu:?} of CPU, {:?} elapsed",
        bytes / 1024,
        started.elapsed()
    );
    assert_eq!(count, inputs);
}

/// Time linear in the size: the same kind of file at 10 KB and at 100 KB (nested
/// brackets, nested mappings, long flow lists) costs about 10 times as much, not 100.
#[test]
fn reading_time_grows_linearly_with_nesting_and_length() {
    type Shape = (&'static str, fn(usize) -> String);
    let shapes: [Shape; 4] = [
        ("nested [", |n| format!("regions: {}\n", "[".repeat(n))),
        ("nested {", |n| {
            format!("regions: {}\n", "{a: ".repeat(n / 4))
        }),
        ("block lists", |n| {
            format!("regions:\n{}", "- ".repeat(n / 2))
        }),
        ("a long flow list", |n| {
            format!("regions: [{}]\n", "a, ".repeat(n / 3))
        }),
    ];
    for (name, make) in shapes {
        let cost = |n: usize| {
            let text = make(n);
            let best = (0..3)
                .map(|_| {
                    let started = cpu_time();
                    let _ = run(&text);
                    cpu_time() - started
                })
                .min()
                .unwrap();
            best.max(Duration::from_micros(200))
        };
        let (small, large) = (cost(10_000), cost(100_000));
        assert!(
            large < Duration::from_secs(1),
            "{name}: 100 KB took {large:?}"
        );
        assert!(
            large < small * 30,
            "{name}: 10 KB {small:?}, 100 KB {large:?}: not linear"
        );
    }
}
