#include "options.hpp"

#include <cstdio>

#include <CLI/CLI.hpp>

namespace otsync::load {
namespace {

struct preset_values {
  std::uint32_t docs;
  std::uint32_t writers;
  std::uint32_t readers;
  std::uint32_t connections;
  double rate = 0;
  double rate_jitter = 0;
};

preset_values preset(const std::string& name) {
  if (name == "spread") return {200, 2, 0, 0};
  if (name == "fanout") return {1, 1, 200, 0};
  if (name == "idle") return {100, 0, 0, 2000};
  // People typing into one document: about 5 edits/s each, unevenly; every author sees the others.
  if (name == "authors") return {1, 100, 0, 0, 5, 0.5};
  return {1, 20, 0, 0};  // contention
}

}  // namespace

std::optional<int> parse_options(int argc, char** argv, options& out) {
  CLI::App app{
      "otsync-load: ShareDB-protocol load generator for otsyncd (or any ShareDB 7 server) and text-unicode "
      "documents. Presets: contention (1 doc x 20 writers), spread (200 docs x 2 writers), fanout (1 writer + 200 "
      "readers per doc), idle (2000 subscribed connections over 100 docs), authors (1 doc x 100 writers at about 5 "
      "edits/s each, --writers N to change). Prints one JSON report on stdout.",
      "otsync-load"};
  std::optional<std::uint32_t> docs;
  std::optional<std::uint32_t> writers;
  std::optional<std::uint32_t> readers;
  std::optional<std::uint32_t> connections;
  std::vector<std::string> urls;
  std::optional<double> rate;
  std::optional<double> rate_jitter;
  app.add_option("--preset", out.preset, "contention, spread, fanout, idle or authors")
      ->check(CLI::IsMember({"contention", "spread", "fanout", "idle", "authors"}))
      ->capture_default_str();
  app.add_option("--docs", docs, "documents")->check(CLI::Range(1u, 1000000u));
  app.add_option("--writers", writers, "writers per document")->check(CLI::Range(0u, 100000u));
  app.add_option("--readers", readers, "readers per document (subscribe only)")->check(CLI::Range(0u, 100000u));
  app.add_option("--connections", connections, "idle connections in total, spread over the documents")
      ->check(CLI::Range(0u, 1000000u));
  app.add_option("--rate", rate,
                 "ops/s per writer (paced, each writer at its own phase; edits compose while one is in flight); 0 = "
                 "closed loop (the default, except for authors: 5)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--rate-jitter", rate_jitter,
                 "paced writers: each interval is 1/rate times a factor in [1-J, 1+J] (default 0, authors 0.5)")
      ->check(CLI::Range(0.0, 0.95));
  app.add_option("--duration", out.duration_s, "measured seconds")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--warmup", out.warmup_s, "seconds of load before measuring")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--timeout", out.timeout_s, "seconds allowed for connecting, and for settling at the end")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--url", urls,
                 "ws://HOST:PORT/PATH or wss://HOST:PORT/PATH, repeatable (connections assigned round-robin)");
  app.add_option("--tls-ca-file", out.tls_ca_file,
                 "wss://: trust the CA certificates in this PEM file instead of the system's store")
      ->check(CLI::ExistingFile);
  app.add_flag("--tls-insecure-skip-verify", out.tls_insecure_skip_verify,
               "wss://: accept any certificate for any name (tests with throwaway certificates only)");
  app.add_option("--collection", out.collection, "collection of the documents")->capture_default_str();
  app.add_option("--pid", out.pids, "server PID to sample (CPU, RSS), repeatable");
  app.add_option("--threads", out.threads, "I/O threads")->check(CLI::Range(1u, 256u))->capture_default_str();
  app.add_option("--json", out.json_file, "also write the report to FILE");
  app.add_option("--seed", out.seed, "random seed of the edits")->capture_default_str();
  app.add_option("--max-doc-chars", out.max_doc_chars, "writers delete instead of inserting past this length")
      ->check(CLI::Range(16u, 100000000u))
      ->capture_default_str();
  app.add_option("--connect-concurrency", out.connect_concurrency, "connection attempts in flight per thread")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_flag("--quiet", out.quiet, "no progress lines on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  preset_values p = preset(out.preset);
  out.docs = docs.value_or(p.docs);
  out.writers = writers.value_or(p.writers);
  out.readers = readers.value_or(p.readers);
  out.connections = connections.value_or(p.connections);
  out.rate = rate.value_or(p.rate);
  out.rate_jitter = rate_jitter.value_or(p.rate_jitter);
  if (!urls.empty()) out.urls = urls;
  if (static_cast<std::uint64_t>(out.docs) * (out.writers + out.readers) + out.connections == 0) {
    std::fprintf(stderr, "otsync-load: nothing to do (no writers, readers or connections)\n");
    return 2;
  }
  return std::nullopt;
}

}  // namespace otsync::load
