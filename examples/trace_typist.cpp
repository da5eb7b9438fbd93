// Replays a recorded editing trace (shared/traces/sequential/*.json.gz) as a
// typist against a server: one keystroke-level patch at a time, at a steady
// typing pace, through the native client. Other clients may edit the same
// document meanwhile; their changes are transformed past ours. At the end it
// waits for every ack and prints a JSON summary. Alone on the document, the
// final text must equal the trace's text after the replayed patches (checked:
// exit 2 when it does not).
//
//   otsync-example-typist --url ws://127.0.0.1:8080/ws --trace shared/traces/sequential/sveltecomponent.json.gz
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "otsync/client/connection.hpp"
#include "otsync/ot/rope.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/trace/editing_trace.hpp"

int main(int argc, char** argv) {
  std::string url;
  std::string trace_path;
  std::string collection = "docs";
  std::string doc_id = "typist";
  double keys_per_second = 6;  // a brisk typist
  std::size_t limit = 0;
  double max_seconds = 0;
  bool alone = true;
  bool print_text = false;
  CLI::App app("Replays an editing trace at typing pace through the native client.");
  app.add_option("--url", url, "server WebSocket URL")->required();
  app.add_option("--trace", trace_path, "a sequential trace (.json.gz)")->required()->check(CLI::ExistingFile);
  app.add_option("--collection", collection, "collection name");
  app.add_option("--doc", doc_id, "document id (created with the trace's start text)");
  app.add_option("--keys-per-second", keys_per_second, "typing pace (patches per second)")->check(CLI::PositiveNumber);
  app.add_option("--limit", limit, "replay only the first N patches (0: all)");
  app.add_option("--max-seconds", max_seconds, "stop typing after this long (0: no limit)");
  app.add_option("--alone", alone, "check the final text against the trace (false when others edit too)");
  app.add_flag("--print-text", print_text, "add the final text to the summary");
  CLI11_PARSE(app, argc, argv);

  otsync::trace::sequential_trace trace;
  try {
    trace = otsync::trace::load_sequential(trace_path);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  std::vector<otsync::ot::op> ops = otsync::trace::trace_ops(trace);
  if (limit > 0 && limit < ops.size()) ops.resize(limit);

  std::uint64_t errors = 0;
  otsync::client::connection_options options;
  options.url = url;
  options.on_error = [&errors](const otsync::client::client_error& e) {
    if (e.code == "OTSYNC_CLIENT_DISCONNECTED") return;  // reconnects by itself
    ++errors;
    std::cerr << "error " << e.code << ": " << e.message << "\n";
  };
  std::unique_ptr<otsync::client::connection> connection;
  try {
    connection = std::make_unique<otsync::client::connection>(options);
  } catch (const std::exception& e) {  // a bad URL or an unusable offline directory
    std::cerr << e.what() << "\n";
    return 1;
  }
  auto& conn = *connection;
  auto doc = conn.open(collection, doc_id, trace.start_content);
  if (!doc->wait_synchronised(std::chrono::seconds(20)) || !doc->exists()) {
    std::cerr << "could not open " << collection << "/" << doc_id << " at " << url << "\n";
    return 1;
  }
  if (alone && doc->text() != trace.start_content) {
    std::cerr << "the document exists with other text; pick a new --doc or pass --alone false\n";
    return 1;
  }

  // Our own copy of the trace's text, to check the result when alone.
  otsync::ot::rope expected(trace.start_content);
  const auto start = std::chrono::steady_clock::now();
  const auto interval = std::chrono::duration<double>(1.0 / keys_per_second);
  std::size_t typed = 0;
  for (const auto& op : ops) {
    auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval * typed);
    std::this_thread::sleep_until(due);
    if (max_seconds > 0 && std::chrono::steady_clock::now() - start > std::chrono::duration<double>(max_seconds)) break;
    if (auto error = doc->submit(op)) {
      std::cerr << "patch " << typed << " rejected: " << error.message() << "\n";
      return 1;
    }
    if (alone) otsync::ot::apply(expected, op);
    ++typed;
    if (typed % 500 == 0) std::cerr << "typed " << typed << "/" << ops.size() << " patches\n";
  }
  const double typing_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bool synced = doc->wait_synchronised(std::chrono::seconds(30));
  std::string text = doc->text();
  bool matches = !alone || text == expected.to_string();
  nlohmann::json summary = {{"trace", trace.name},
                            {"patches_typed", typed},
                            {"typing_seconds", typing_seconds},
                            {"acknowledged_ops", doc->acknowledged()},
                            {"version", doc->version()},
                            {"text_code_points", otsync::ot::rope(text).size()},
                            {"synchronised", synced},
                            {"matches_trace", matches},
                            {"reconnects", conn.reconnects()},
                            {"errors", errors}};
  if (print_text) summary["text"] = text;
  std::cout << summary.dump() << std::endl;
  if (!synced) return 1;
  return matches ? 0 : 2;
}
