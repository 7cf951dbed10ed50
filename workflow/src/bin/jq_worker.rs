//! `nectar-jq-worker <memory bytes>`: the jq sandbox's worker as a binary of its own, for the
//! engine's tests and benches (hosts such as the `workflows` function re-execute themselves with
//! `--nectar-jq-worker` instead, see `nectar_workflow::jq::process`).

fn main() {
    let memory = std::env::args()
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    std::process::exit(nectar_workflow::jq::process::worker_main(memory));
}
