//! The version index in the library: building it from scratch, extending it by one commit,
//! and reading it back from its cache file.
//!
//! Runs on a repository made by the shared bench's `make-history-repo` (registry root
//! `prompts/`): `PROMPTREG_BENCH_REPO` if set, else `target/bench-repos/small` (50 prompts,
//! 500 commits), which is generated when missing (`make-history-repo` is looked up in
//! `PROMPTREG_BENCH_DIR`, default `../shared/bench` next to the project). Without the
//! generator or the repository the benchmarks are skipped with a message.
//!
//! * `index/build`: `VersionIndex::build` at `HEAD` (the cold walk of `list`).
//! * `index/update_one_commit`: an index built at `HEAD~1` brought to `HEAD` (what `list` does
//!   after one new commit, without the cache file I/O).
//! * `index/encode`, `index/decode`: the cache file's serialization (most of a warm `list`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::Criterion;
use promptreg::git::Repo;
use promptreg::history::cache;
use promptreg::history::VersionIndex;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The repository to measure, generated if it is the default one and missing.
fn bench_repo() -> Option<PathBuf> {
    if let Some(repo) = std::env::var_os("PROMPTREG_BENCH_REPO") {
        return Some(PathBuf::from(repo));
    }
    let repo = manifest_dir().join("target/bench-repos/small");
    if repo.join(".git").exists() {
        return Some(repo);
    }
    let bench_dir = std::env::var_os("PROMPTREG_BENCH_DIR")
        .map_or_else(|| manifest_dir().join("../shared/bench"), PathBuf::from);
    let generator = bench_dir.join("make-history-repo");
    if !generator.exists() {
        eprintln!(
            "index bench skipped: no repository at {} and no generator at {}",
            repo.display(),
            generator.display()
        );
        return None;
    }
    std::fs::create_dir_all(repo.parent()?).ok()?;
    eprintln!("generating {} ...", repo.display());
    let status = Command::new(&generator)
        .arg("--out")
        .arg(&repo)
        .args(["--prompts", "50", "--commits", "500", "-q"])
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("index bench skipped: make-history-repo failed");
        return None;
    }
    Some(repo)
}

fn benches(c: &mut Criterion) {
    let Some(repo_dir) = bench_repo() else { return };
    let root = repo_dir
        .join("prompts")
        .canonicalize()
        .expect("the repository has prompts/");
    let repo = Repo::discover(&root)
        .expect("open repository")
        .expect("prompts/ is inside a repository");
    let tip = repo.head().expect("HEAD").expect("a commit");
    let parent = repo.resolve("HEAD~1").expect("HEAD~1");
    let full = VersionIndex::build(&repo, tip).expect("build");
    let before = VersionIndex::build(&repo, parent).expect("build at HEAD~1");
    let encoded = cache::encode(&full);
    eprintln!(
        "{}: {} first-parent commits, {} version commits, {} files, cache {} KiB",
        repo_dir.display(),
        full.chain_len,
        full.commits.len(),
        full.files.len(),
        encoded.len() / 1024
    );

    let mut g = c.benchmark_group("index");
    g.sample_size(20);
    g.bench_function("build", |b| {
        b.iter(|| VersionIndex::build(&repo, black_box(tip)).expect("build"))
    });
    g.bench_function("update_one_commit", |b| {
        b.iter_batched(
            || before.clone(),
            |mut index| {
                index.update(&repo, black_box(tip)).expect("update");
                index
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("encode", |b| b.iter(|| cache::encode(black_box(&full))));
    g.bench_function("decode", |b| {
        b.iter(|| cache::decode(black_box(&encoded)).expect("decode"))
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
