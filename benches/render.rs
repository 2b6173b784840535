//! Rendering in the library against a bare minijinja render of the same templates and values.
//!
//! The fixture is the shared bench's representative prompt (`chat-reply` from the medium
//! repository: two messages, `{% if %}` twice, `| title`) with the values of `data.json`
//! (the declared defaults plus `user_name`):
//!
//! * `bare/render`: both messages compiled once with a plain `Environment` and strict
//!   undefined, the values converted to a minijinja value once, then each message rendered.
//! * `bare/render_prompt_j2`: the fixture's `prompt.j2` (both messages as one template, what
//!   `minijinja-cli` renders and the shared bench's `minijinja-bench` times), compiled once:
//!   the anchor for comparing with baseline numbers measured on another machine.
//! * `bare/convert_render`: `bare/render` plus converting the JSON values every time (the
//!   library takes a JSON map per call, so it has to).
//! * `bare_promptreg_env/render`: `bare/render` in promptreg's own environment
//!   (`template::environment`: fuel, recursion limit, the `none` formatter, no auto-escape), to
//!   separate what the settings cost from what the library adds around the render.
//! * `library/render`: `Registry::open` -> `load_work` -> `compile` once, then
//!   `CompiledPrompt::render(&values)` per iteration (types checked, defaults applied, the
//!   values converted, every message rendered, the `Rendered` built).
//! * `*/compile_render`: compiling and rendering every iteration (`compile` starts from the
//!   loaded prompt, so YAML parsing is not in it; `library/load_compile_render` adds the
//!   file read and parse).
//!
//! The fixture is read from `PROMPTREG_BENCH_FIXTURES` (default `../shared/bench/fixtures`
//! next to the project); when it is missing the benchmarks are skipped with a message.
//! `cargo bench --bench render` first measures `library/render` against `bare/render` in
//! alternating batches (the drift-resistant ratio), then runs criterion; the ratios of
//! criterion's estimates, which ran one after the other, are printed at the end.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::Criterion;
use minijinja::{Environment, UndefinedBehavior};
use promptreg::Registry;
use serde_json::{Map, Value};

struct Fixture {
    yaml: String,
    /// Both messages as one template (`prompt.j2`, what `minijinja-cli` and the shared
    /// bench's `minijinja-bench` render), if present.
    combined: Option<String>,
    messages: Vec<String>,
    values: Map<String, Value>,
}

fn fixture_dir() -> PathBuf {
    std::env::var_os("PROMPTREG_BENCH_FIXTURES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/fixtures"),
        PathBuf::from,
    )
}

fn load_fixture() -> Option<Fixture> {
    let dir = fixture_dir();
    let yaml = std::fs::read_to_string(dir.join("representative.prompt.yaml")).ok()?;
    let data = std::fs::read_to_string(dir.join("data.json")).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).ok()?;
    let messages = doc
        .get("messages")?
        .as_sequence()?
        .iter()
        .filter_map(|m| m.get("content")?.as_str().map(str::to_string))
        .collect();
    let values: Map<String, Value> = serde_json::from_str(&data).ok()?;
    Some(Fixture {
        combined: std::fs::read_to_string(dir.join("prompt.j2")).ok(),
        yaml,
        messages,
        values,
    })
}

/// A plain environment: strict undefined, nothing else.
fn bare_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

fn add_messages(env: &mut Environment<'static>, messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let name = format!("m{i}");
            env.add_template_owned(name.clone(), m.clone())
                .expect("fixture compiles");
            name
        })
        .collect()
}

fn render_all(env: &Environment<'_>, names: &[String], ctx: &minijinja::Value) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            env.get_template(n)
                .and_then(|t| t.render(ctx))
                .expect("fixture renders")
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let Some(fx) = load_fixture() else {
        eprintln!(
            "render bench skipped: no fixture at {} (set PROMPTREG_BENCH_FIXTURES to the shared bench's fixtures/)",
            fixture_dir().display()
        );
        return;
    };

    // The registry: a temporary directory outside any repository with the fixture as x.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("x.prompt.yaml"), &fx.yaml).expect("write fixture");
    let registry = Registry::open(dir.path()).expect("open registry");
    let compiled = registry
        .load_work("x")
        .expect("load")
        .compile()
        .expect("compile");

    let ctx = minijinja::Value::from(minijinja::value::Serde(&fx.values));
    let mut bare = bare_env();
    let bare_names = add_messages(&mut bare, &fx.messages);
    // promptreg's own environment (its partial loader reads the fixture's registry and is never
    // called by these templates).
    let mut like =
        promptreg::render::template::environment(promptreg::Syntax::Jinja, registry.work(), false);
    let like_names = add_messages(&mut like, &fx.messages);

    // The two paths must produce the same texts, or the comparison means nothing.
    let expected = render_all(&bare, &bare_names, &ctx);
    let rendered = compiled.render(&fx.values).expect("library render");
    assert_eq!(rendered.output.texts(), expected, "library and bare differ");
    assert_eq!(render_all(&like, &like_names, &ctx), expected);

    if !test_mode() {
        interleaved(
            "bare/render",
            || render_all(&bare, &bare_names, black_box(&ctx)),
            || compiled.render(black_box(&fx.values)).expect("render"),
        );
        interleaved(
            "bare/convert_render",
            || {
                let ctx = minijinja::Value::from(minijinja::value::Serde(black_box(&fx.values)));
                render_all(&bare, &bare_names, &ctx)
            },
            || compiled.render(black_box(&fx.values)).expect("render"),
        );
    }

    let mut g = c.benchmark_group("bare");
    g.bench_function("render", |b| {
        b.iter(|| render_all(&bare, &bare_names, black_box(&ctx)))
    });
    if let Some(combined) = &fx.combined {
        let mut env = bare_env();
        env.add_template_owned("prompt.j2", combined.clone())
            .expect("prompt.j2 compiles");
        let tmpl = env.get_template("prompt.j2").expect("prompt.j2");
        g.bench_function("render_prompt_j2", |b| {
            b.iter(|| tmpl.render(black_box(&ctx)).expect("render"))
        });
    }
    g.bench_function("convert_render", |b| {
        b.iter(|| {
            let ctx = minijinja::Value::from(minijinja::value::Serde(black_box(&fx.values)));
            render_all(&bare, &bare_names, &ctx)
        })
    });
    g.bench_function("compile_render", |b| {
        b.iter(|| {
            let mut env = bare_env();
            let names = add_messages(&mut env, black_box(&fx.messages));
            render_all(&env, &names, &ctx)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("bare_promptreg_env");
    g.bench_function("render", |b| {
        b.iter(|| render_all(&like, &like_names, black_box(&ctx)))
    });
    g.finish();

    let mut g = c.benchmark_group("library");
    g.bench_function("render", |b| {
        b.iter(|| compiled.render(black_box(&fx.values)).expect("render"))
    });
    g.bench_function("context", |b| {
        b.iter(|| compiled.context(black_box(&fx.values)).expect("context"))
    });
    g.bench_function("compile_render", |b| {
        let loaded = registry.load_work("x").expect("load");
        b.iter(|| {
            let compiled = black_box(loaded.clone()).compile().expect("compile");
            compiled.render(&fx.values).expect("render")
        })
    });
    g.bench_function("load_compile_render", |b| {
        b.iter(|| {
            let compiled = registry
                .load_work(black_box("x"))
                .expect("load")
                .compile()
                .expect("compile");
            compiled.render(&fx.values).expect("render")
        })
    });
    g.finish();
}

/// Whether criterion runs in test mode (`cargo bench -- --test`) or only lists benchmarks.
fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test" || a == "--list")
}

/// The library render against a bare render in alternating batches, so that the machine's
/// speed drifting during the run hits both alike: 101 rounds of 2000 renders each, the order
/// swapped every round. Prints the medians per render and the median of the per-round ratios.
fn interleaved<A, B>(label: &str, mut bare: impl FnMut() -> A, mut library: impl FnMut() -> B) {
    const ROUNDS: usize = 101;
    const BATCH: u32 = 2000;
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..BATCH {
            f();
        }
        start.elapsed().as_secs_f64() * 1e9 / f64::from(BATCH)
    };
    let mut run_bare = || {
        black_box(bare());
    };
    let mut run_library = || {
        black_box(library());
    };
    // Warm up both.
    time(&mut run_bare);
    time(&mut run_library);
    let (mut b, mut l, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (tb, tl) = if round % 2 == 0 {
            let tb = time(&mut run_bare);
            (tb, time(&mut run_library))
        } else {
            let tl = time(&mut run_library);
            (time(&mut run_bare), tl)
        };
        b.push(tb);
        l.push(tl);
        r.push(tl / tb);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mb, ml, mr) = (median(&mut b), median(&mut l), median(&mut r));
    let (lo, hi) = (r[ROUNDS / 10], r[ROUNDS - 1 - ROUNDS / 10]);
    println!(
        "interleaved ({ROUNDS} rounds of {BATCH}): library/render {:.3} us, {label} {:.3} us, \
         ratio {mr:.2}x (median of per-round ratios; p10-p90 {lo:.2}-{hi:.2})",
        ml / 1e3,
        mb / 1e3,
    );
}

/// Criterion's point estimate of the median, in nanoseconds, from its saved results.
fn median_ns(group: &str, bench: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let path = target
        .join("criterion")
        .join(group)
        .join(bench)
        .join("new/estimates.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    data["median"]["point_estimate"].as_f64()
}

fn ratios() {
    let pairs = [
        (
            "library/render / bare/render",
            ("library", "render"),
            ("bare", "render"),
        ),
        (
            "library/render / bare/convert_render",
            ("library", "render"),
            ("bare", "convert_render"),
        ),
        (
            "bare_promptreg_env/render / bare/render",
            ("bare_promptreg_env", "render"),
            ("bare", "render"),
        ),
        (
            "library/compile_render / bare/compile_render",
            ("library", "compile_render"),
            ("bare", "compile_render"),
        ),
    ];
    let mut printed = false;
    for (label, (g1, b1), (g2, b2)) in pairs {
        if let (Some(a), Some(b)) = (median_ns(g1, b1), median_ns(g2, b2)) {
            if !printed {
                println!("\nratios of criterion's median estimates:");
                printed = true;
            }
            println!(
                "  {label}: {:.3} us / {:.3} us = {:.2}x",
                a / 1e3,
                b / 1e3,
                a / b
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    ratios();
}
