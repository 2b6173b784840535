//! Whole versions: a commit that changes a file a prompt reads (a partial, at that commit,
//! transitively; a Dotprompt partial; a file Prompty's `${file:...}` names) is a version of the
//! prompt, so every reference to one version renders one text.

use std::path::Path;

use promptreg::history::VersionIndex;
use promptreg::registry::reference::Reference;
use promptreg::Registry;
use serde_json::Map;

use crate::common::TestRepo;

/// The rendered text of `reference` in the registry at `path`.
fn render(path: &Path, reference: &str) -> String {
    let registry = Registry::open(path).expect("open");
    let reference = Reference::parse(reference).expect("reference");
    let resolved = registry.resolve(&reference).expect("resolve");
    let compiled = registry
        .load_resolved(reference.id(), &resolved)
        .expect("load")
        .compile()
        .expect("compile");
    compiled
        .render(&Map::new())
        .expect("render")
        .output
        .texts()
        .join("\n---\n")
}

/// The commits of `id`'s versions, oldest first.
fn version_commits(path: &Path, id: &str) -> Vec<String> {
    let registry = Registry::open(path).expect("open");
    let (index, versions) = registry.versions(id).expect("versions");
    versions
        .iter()
        .map(|v| index.commit(v).id.to_hex())
        .collect()
}

fn cold(path: &Path) -> VersionIndex {
    let registry = Registry::open(path).expect("open");
    let repo = registry.repo().expect("repo");
    VersionIndex::build(&repo, registry.tip().expect("tip")).expect("build")
}

const W: &str =
    "messages:\n  - role: system\n    content: '{% include \"parts/intro.txt\" %} Go.'\n";

#[test]
fn an_edit_to_a_partial_is_a_version_and_every_reference_renders_its_text() {
    let mut repo = TestRepo::new();
    repo.write("parts/intro.txt", "Hello v1.");
    repo.write("parts/other.txt", "unused");
    repo.write("w.prompt.yaml", W);
    repo.write("plain.prompt.yaml", "template: plain\n");
    let c1 = repo.commit("Add w");
    repo.write("parts/intro.txt", "Hello v2.");
    let c2 = repo.commit("Intro: v2");
    repo.write("parts/other.txt", "still unused");
    let c3 = repo.commit("A partial no prompt reads");
    // The cache is built here; the rest extends it.
    assert_eq!(
        version_commits(repo.path(), "w"),
        [c1.as_str(), c2.as_str()]
    );
    repo.write("w.prompt.yaml", &W.replace("Go.", "Go now."));
    let c4 = repo.commit("w itself");
    repo.write("parts/intro.txt", "{% include \"parts/deep.txt\" %} v3.");
    repo.write("parts/deep.txt", "Deep A");
    let c5 = repo.commit("Intro includes deep");
    repo.write("parts/deep.txt", "Deep B");
    let c6 = repo.commit("Deep: B (through intro)");

    let path = repo.path();
    assert_eq!(
        version_commits(path, "w"),
        [
            c1.as_str(),
            c2.as_str(),
            c4.as_str(),
            c5.as_str(),
            c6.as_str()
        ]
    );
    assert_eq!(
        version_commits(path, "plain").len(),
        1,
        "plain reads nothing"
    );
    // The extended cache and a cold build agree.
    let registry = Registry::open(path).expect("open");
    assert_eq!(*registry.index().expect("index"), cold(path));

    let texts = [
        "Hello v1. Go.",
        "Hello v2. Go.",
        "Hello v2. Go now.",
        "Deep A v3. Go now.",
        "Deep B v3. Go now.",
    ];
    for (n, text) in texts.iter().enumerate() {
        assert_eq!(render(path, &format!("w@{}", n + 1)), *text, "w@{}", n + 1);
    }
    assert_eq!(render(path, "w@latest"), texts[4]);
    assert_eq!(render(path, "w"), texts[4], "the default is the latest");
    assert_eq!(render(path, &format!("w@{}", &c2[..10])), texts[1]);
    assert_eq!(
        render(path, &format!("w@{}", &c3[..10])),
        texts[1],
        "the version current at a commit that is not one"
    );
    // A version pinned in the manifest renders the text of its own commit.
    repo.write("defaults.yaml", "defaults:\n  w: 2\n");
    repo.commit("Pin w at 2");
    assert_eq!(render(repo.path(), "w"), texts[1]);
}

#[test]
fn a_deleted_partial_is_a_version_and_a_deleted_prompt_gets_none() {
    let mut repo = TestRepo::new();
    repo.write("parts/intro.txt", "Hi.");
    repo.write("w.prompt.yaml", W);
    repo.write("gone.prompt.yaml", W);
    let c1 = repo.commit("Add");
    repo.remove("gone.prompt.yaml");
    repo.commit("Remove gone");
    repo.remove("parts/intro.txt");
    let c3 = repo.commit("Remove the partial");
    assert_eq!(version_commits(repo.path(), "w"), [c1, c3]);
    let registry = Registry::open(repo.path()).expect("open");
    let index = registry.index().expect("index");
    assert_eq!(index.versions("gone.prompt.yaml").len(), 1);
}

#[test]
fn prompty_files_and_dotprompt_partials_make_versions_too() {
    let mut repo = TestRepo::new();
    repo.write(
        "chat.prompty",
        "---\nname: chat\nsample: ${file:data/sample.json}\n---\nsystem:\nHello {{who}}\n",
    );
    repo.write("data/sample.json", "{\"who\": \"Ada\"}");
    repo.write(
        "story.prompt",
        "---\nmodel: m\n---\n{{>style}}\n{{role \"user\"}}\nTell a story.\n",
    );
    repo.write("_style.prompt", "{{role \"system\"}}\nBe a pirate.\n");
    let c1 = repo.commit("Add");
    repo.write("data/sample.json", "{\"who\": \"Grace\"}");
    let c2 = repo.commit("Sample: Grace");
    repo.write("_style.prompt", "{{role \"system\"}}\nBe a cowboy.\n");
    let c3 = repo.commit("Style: cowboy");
    assert_eq!(
        version_commits(repo.path(), "chat"),
        [c1.as_str(), c2.as_str()]
    );
    assert_eq!(version_commits(repo.path(), "story"), [c1, c3]);
    assert_eq!(
        render(repo.path(), "story@1"),
        "Be a pirate.\n---\nTell a story."
    );
    assert_eq!(
        render(repo.path(), "story@2"),
        "Be a cowboy.\n---\nTell a story."
    );
    assert_eq!(
        *Registry::open(repo.path())
            .expect("open")
            .index()
            .expect("index"),
        cold(repo.path())
    );
}

#[test]
fn an_index_that_never_saw_a_partial_learns_them_when_one_appears() {
    let mut repo = TestRepo::new();
    repo.write("a.prompt.yaml", "template: a\n");
    repo.commit("Add a");
    // Cached with nothing known about what prompts read: no file but prompts changed yet.
    let registry = Registry::open(repo.path()).expect("open");
    assert_eq!(registry.index().expect("index").reading, None);
    repo.write("w.prompt.yaml", W);
    repo.write("parts/intro.txt", "One.");
    let c2 = repo.commit("Add w and its partial");
    let registry = Registry::open(repo.path()).expect("open");
    let index = registry.index().expect("index");
    assert_eq!(
        index.reading,
        Some(["w.prompt.yaml".to_string()].into_iter().collect())
    );
    repo.write("parts/intro.txt", "Two.");
    let c3 = repo.commit("Intro: two");
    assert_eq!(
        version_commits(repo.path(), "w"),
        [c2.as_str(), c3.as_str()]
    );
    assert_eq!(version_commits(repo.path(), "a").len(), 1);
    let registry = Registry::open(repo.path()).expect("open");
    assert_eq!(*registry.index().expect("index"), cold(repo.path()));
}

/// A long history walked at once is the index that commit-by-commit updates build (partials,
/// deletions and other files included).
#[test]
fn a_long_history_walked_at_once_is_the_index_updates_build() {
    let mut repo = TestRepo::new();
    repo.write("parts/intro.txt", "Hello.");
    repo.write("w.prompt.yaml", W);
    let mut commits = vec![repo.commit("Start")];
    for i in 0..320 {
        match i % 7 {
            0 => repo.write("parts/intro.txt", &format!("Hello {i}.")),
            1 => repo.write("README.md", &format!("readme {i}")),
            2 => repo.write(
                &format!("p{}.prompt.yaml", i % 5),
                &format!("template: t{i}\n"),
            ),
            3 if i % 3 == 0
                && repo
                    .path()
                    .join(format!("p{}.prompt.yaml", (i + 2) % 5))
                    .exists() =>
            {
                repo.remove(&format!("p{}.prompt.yaml", (i + 2) % 5))
            }
            4 => repo.write("w.prompt.yaml", &W.replace("Go.", &format!("Go {i}."))),
            _ => repo.write(
                &format!("deep/d{}.prompt.yml", i % 3),
                &format!("template: d{i}\n"),
            ),
        }
        commits.push(repo.commit(&format!("Change {i}")));
    }
    let registry = Registry::open(repo.path()).expect("open");
    let git = registry.repo().expect("repo");
    let id = |hex: &str| promptreg::ObjectId::from_hex(hex).expect("hex");
    let whole = VersionIndex::build(&git, id(&commits[commits.len() - 1])).expect("build");
    // The same history in steps.
    let mut stepped = VersionIndex::build(&git, id(&commits[100])).expect("build");
    for at in [200, 300, commits.len() - 1] {
        stepped.update(&git, id(&commits[at])).expect("update");
    }
    assert_eq!(whole, stepped);
    assert!(
        whole.versions("w.prompt.yaml").len() > 90,
        "w follows its partial"
    );
}
