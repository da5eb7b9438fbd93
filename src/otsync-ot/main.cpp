// otsync-ot: the OT core from the command line.
//
//   otsync-ot check [--failures-only]  < cases.jsonl
//   otsync-ot replay FILE.json.gz...
//
// `check` reads test cases in the format of shared/traces/ot-conformance (one
// JSON object per line: apply, compose, transform, and the extra kinds below),
// computes each with otsync's OT core and prints the result beside the
// expected one, then a summary line; it exits 1 on any mismatch.
// `replay` replays sequential editing traces through the OT core and the rope.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "otsync/ot/rope.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/protocol/op_json.hpp"
#include "otsync/trace/editing_trace.hpp"

namespace {

using nlohmann::json;
namespace ot = otsync::ot;
namespace protocol = otsync::protocol;

/// What a case computed: a JSON result, or an error message.
struct outcome {
  json value;
  bool failed = false;
};

outcome error_outcome(std::error_code error) {
  return {error.message(), true};
}
outcome error_outcome(std::string message) {
  return {std::move(message), true};
}

template <class T, class Fn>
outcome from_result(const ot::result<T>& r, Fn&& to_json) {
  if (!r) return error_outcome(r.error());
  return {to_json(*r), false};
}

/// The case kind: the explicit "kind", else inferred from the keys as in the
/// conformance files.
std::string kind_of(const json& c) {
  if (c.contains("kind") && c["kind"].is_string()) return c["kind"].get<std::string>();
  if (c.contains("op1")) return "compose";
  if (c.contains("otherOp")) return "transform";
  if (c.contains("str")) return "apply";
  return "unknown";
}

json selection_to_json(const ot::selection& s, bool pair) {
  return pair ? json::array({s.anchor, s.focus}) : json(s.anchor);
}

outcome run_case(const std::string& kind, const json& c) {
  const auto op_field = [&](const char* key, bool checked) -> ot::result<ot::op> {
    if (!c.contains(key)) return ot::errc::op_not_array;
    return checked ? protocol::op_from_json(c[key]) : protocol::op_from_json_unchecked(c[key]);
  };
  const auto to_json = [](const ot::op& o) { return protocol::op_to_json(o); };
  if (kind == "apply") {
    if (!c.contains("str") || !c["str"].is_string()) return error_outcome("case needs a string \"str\"");
    auto operation = op_field("op", true);
    if (!operation) return error_outcome(operation.error());
    return from_result(ot::apply(c["str"].get<std::string>(), *operation),
                       [](const std::string& s) { return json(s); });
  }
  if (kind == "compose") {
    auto first = op_field("op1", true);
    if (!first) return error_outcome(first.error());
    auto second = op_field("op2", true);
    if (!second) return error_outcome(second.error());
    return from_result(ot::compose(*first, *second), to_json);
  }
  if (kind == "transform") {
    const std::string side = c.value("side", std::string());
    if (side != "left" && side != "right") return error_outcome("side (" + side + ") must be 'left' or 'right'");
    auto operation = op_field("op", true);
    if (!operation) return error_outcome(operation.error());
    auto other = op_field("otherOp", true);
    if (!other) return error_outcome(other.error());
    return from_result(ot::transform(*operation, *other, side == "left" ? ot::side::left : ot::side::right), to_json);
  }
  if (kind == "transformPosition" || kind == "transformSelection") {
    const json& where = c.contains("sel") ? c["sel"] : c.value("pos", json());
    auto range = protocol::selection_from_json(where);
    if (!range) return error_outcome(range.error());
    auto operation = op_field("op", false);
    if (!operation) return error_outcome(operation.error());
    return {selection_to_json(ot::transform_selection(*range, *operation), where.is_array()), false};
  }
  if (kind == "transformPresence") {
    // As otsyncd moves a presence value (protocol::presence_selection, ot::transform_selection with
    // the owner's flag); other values travel unchanged.
    auto operation = op_field("op", false);
    if (!operation) return error_outcome(operation.error());
    json value = c.value("value", json());
    auto range = protocol::presence_selection(value);
    if (!range) return {value, false};
    auto moved = ot::transform_selection(*range, *operation, c.value("own", false));
    if (moved != *range) protocol::set_presence_selection(value, moved);
    return {value, false};
  }
  if (kind == "normalize") {
    auto operation = op_field("op", false);
    if (!operation) return error_outcome(operation.error());
    return {to_json(ot::normalize(*operation)), false};
  }
  if (kind == "makeInvertible") {
    if (!c.contains("str") || !c["str"].is_string()) return error_outcome("case needs a string \"str\"");
    auto operation = op_field("op", false);
    if (!operation) return error_outcome(operation.error());
    return {to_json(ot::make_invertible(*operation, ot::rope(c["str"].get<std::string>()))), false};
  }
  if (kind == "invert") {
    auto operation = op_field("op", false);
    if (!operation) return error_outcome(operation.error());
    return from_result(ot::invert(*operation), to_json);
  }
  return error_outcome("unknown case kind \"" + kind + "\"");
}

int run_check(bool failures_only) {
  std::size_t line_number = 0;
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::map<std::string, std::pair<std::size_t, std::size_t>> by_kind;  // passed, failed
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json report{{"line", line_number}};
    const json c = json::parse(line, nullptr, false);
    bool ok = false;
    std::string kind = "unknown";
    if (c.is_discarded() || !c.is_object()) {
      report["actual"] = {{"error", "input line is not a JSON object"}};
    } else {
      kind = kind_of(c);
      const outcome actual = run_case(kind, c);
      report["actual"] = actual.failed ? json{{"error", actual.value}} : json{{"result", actual.value}};
      if (c.contains("result")) {
        report["expected"] = {{"result", c["result"]}};
        ok = !actual.failed && actual.value == c["result"];
      } else if (c.contains("error")) {
        report["expected"] = {{"error", c["error"]}};
        ok = actual.failed && actual.value == c["error"];
      } else {
        report["expected"] = nullptr;  // a case without an expectation cannot pass
      }
    }
    report["kind"] = kind;
    report["ok"] = ok;
    auto& counts = by_kind[kind];
    if (ok) {
      ++passed;
      ++counts.first;
    } else {
      ++failed;
      ++counts.second;
    }
    if (!ok || !failures_only) std::cout << report.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  }
  json kinds = json::object();
  for (const auto& [kind, counts] : by_kind) kinds[kind] = {{"passed", counts.first}, {"failed", counts.second}};
  std::cout
      << json{{"summary", true}, {"total", passed + failed}, {"passed", passed}, {"failed", failed}, {"by_kind", kinds}}
             .dump()
      << std::endl;
  if (passed + failed == 0) {
    std::cerr << "otsync-ot check: no cases on stdin\n";
    return 2;  // an empty run must not pass for a successful one
  }
  return failed == 0 ? 0 : 1;
}

int run_replay(const std::vector<std::string>& files) {
  int status = 0;
  for (const auto& file : files) {
    json report{{"trace", file}};
    try {
      const auto trace = otsync::trace::load_sequential(file);
      const auto ops = otsync::trace::trace_ops(trace);  // built before timing
      report["trace"] = trace.name;
      report["patches"] = ops.size();
      ot::rope doc(trace.start_content);
      std::error_code error;
      std::size_t applied = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const auto& operation : ops) {
        if ((error = ot::apply(doc, operation))) break;
        ++applied;
      }
      const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
      report["ms"] = elapsed.count();
      report["code_points"] = doc.size();
      report["bytes"] = doc.size_bytes();
      const bool ok = !error && doc == trace.end_content;
      report["ok"] = ok;
      if (error) report["error"] = "patch " + std::to_string(applied) + ": " + error.message();
      if (!error && !ok) report["error"] = "final text differs from endContent";
      if (!ok) status = 1;
    } catch (const std::exception& e) {
      report["ok"] = false;
      report["error"] = e.what();
      status = 1;
    }
    std::cout << report.dump() << std::endl;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"otsync-ot: check otsync's text-unicode OT core against test vectors, replay editing traces"};
  app.require_subcommand(1);
  bool failures_only = false;
  auto* check = app.add_subcommand(
      "check", "Read test cases (JSON lines) on stdin; print each result beside the expected one, then a summary");
  check->add_flag("--failures-only", failures_only, "Print only the cases that do not match, and the summary");
  std::vector<std::string> files;
  auto* replay = app.add_subcommand("replay", "Replay sequential editing traces (*.json.gz) and verify endContent");
  replay->add_option("files", files, "Trace files")->required()->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  std::ios::sync_with_stdio(false);
  if (*check) return run_check(failures_only);
  return run_replay(files);
}
