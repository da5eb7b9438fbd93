// OT core benchmarks: trace replay through the rope, small-op transform and
// compose, and the compose fold of a long keystroke sequence.
//
// Inputs: shared/traces (OTSYNC_TRACES_DIR at build time, or the
// OTSYNC_TRACES_DIR environment variable), and the small-op cases in
// OTSYNC_BENCH_SMALL_OPS (JSON lines from tests/js/ot_cases.js --profile
// small), so the ot-text-unicode peer times the very same ops. Without that
// file, small ops are generated here.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "otsync/ot/op_composer.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/op_json.hpp"
#include "otsync/trace/editing_trace.hpp"
#include "support/random_ops.hpp"

namespace {

namespace ot = otsync::ot;
namespace fs = std::filesystem;

fs::path traces_dir() {
  if (const char* env = std::getenv("OTSYNC_TRACES_DIR")) return env;
  return OTSYNC_TRACES_DIR;
}

struct transform_case {
  ot::op op;
  ot::op other;
  ot::side side;
};
struct compose_case {
  ot::op first;
  ot::op second;
};
struct small_ops {
  std::vector<transform_case> transforms;
  std::vector<compose_case> composes;
};

small_ops load_small_ops() {
  small_ops out;
  if (const char* file = std::getenv("OTSYNC_BENCH_SMALL_OPS")) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error(std::string("cannot open OTSYNC_BENCH_SMALL_OPS=") + file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto c = nlohmann::json::parse(line);
      if (c.contains("otherOp")) {
        out.transforms.push_back({*otsync::protocol::op_from_json(c["op"]),
                                  *otsync::protocol::op_from_json(c["otherOp"]),
                                  c["side"] == "left" ? ot::side::left : ot::side::right});
      } else if (c.contains("op1")) {
        out.composes.push_back({*otsync::protocol::op_from_json(c["op1"]), *otsync::protocol::op_from_json(c["op2"])});
      }
    }
    return out;
  }
  otsync::test::random_ops random(1);
  for (int i = 0; i < 2000; ++i) {
    const std::string doc = random.document(60);
    const ot::op a = random.op_for(doc);
    out.transforms.push_back({a, random.op_for(doc), i % 2 ? ot::side::left : ot::side::right});
    out.composes.push_back({a, random.op_for(*ot::apply(doc, a))});
  }
  return out;
}

const small_ops& inputs() {
  static const small_ops ops = load_small_ops();
  return ops;
}

void transform_small(benchmark::State& state) {
  const auto& cases = inputs().transforms;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& c = cases[i];
    auto r = ot::transform(c.op, c.other, c.side);
    benchmark::DoNotOptimize(r);
    if (++i == cases.size()) i = 0;
  }
  state.SetLabel(std::to_string(cases.size()) + " cases");
}

void compose_small(benchmark::State& state) {
  const auto& cases = inputs().composes;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& c = cases[i];
    auto r = ot::compose(c.first, c.second);
    benchmark::DoNotOptimize(r);
    if (++i == cases.size()) i = 0;
  }
  state.SetLabel(std::to_string(cases.size()) + " cases");
}

void replay(benchmark::State& state, const fs::path& file) {
  const auto trace = otsync::trace::load_sequential(file);
  const auto ops = otsync::trace::trace_ops(trace);
  for (auto _ : state) {
    ot::rope doc(trace.start_content);
    for (const auto& o : ops) {
      if (ot::apply(doc, o)) {
        state.SkipWithError("op failed to apply");
        return;
      }
    }
    state.PauseTiming();
    if (!(doc == trace.end_content)) state.SkipWithError("replay does not reach endContent");
    state.ResumeTiming();
  }
  state.counters["patches"] = static_cast<double>(ops.size());
}

// One keystroke op (alternately an insert and a delete) at a random place in a
// 1 MB document: apply must cost microseconds or less, not a document copy.
void apply_keystroke_1mb(benchmark::State& state) {
  otsync::test::random_ops random(3);
  std::string text;
  while (text.size() < (1U << 20U)) text += random.text(40) + "\n";
  ot::rope doc(text);
  std::vector<ot::op> ops;
  for (int i = 0; i < 1024; ++i) {
    const std::uint64_t at = random.uniform(1, doc.size() - 2);
    ot::op_builder insert;
    insert.skip(at).insert("é");
    ot::op_builder erase;
    erase.skip(at).erase(1);
    ops.push_back(std::move(insert).finish());
    ops.push_back(std::move(erase).finish());
  }
  for (auto& o : ops) (void)ot::validate(o);  // as ops arrive from the codec
  std::size_t i = 0;
  for (auto _ : state) {
    if (ot::apply(doc, ops[i])) state.SkipWithError("apply failed");
    if (++i == ops.size()) i = 0;
  }
  state.counters["doc_bytes"] = static_cast<double>(doc.size_bytes());
}

const std::vector<ot::op>& automerge_ops() {
  static const std::vector<ot::op> ops =
      otsync::trace::trace_ops(otsync::trace::load_sequential(traces_dir() / "sequential/automerge-paper.json.gz"));
  return ops;
}

void compose_fold(benchmark::State& state) {
  const auto& ops = automerge_ops();
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    ot::op_composer composer;
    for (std::size_t i = 0; i < n; ++i) {
      if (composer.compose(ops[i])) {
        state.SkipWithError("compose failed");
        return;
      }
    }
    auto result = composer.finish();
    benchmark::DoNotOptimize(result);
  }
  state.SetComplexityN(state.range(0));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RegisterBenchmark("transform_small", transform_small);
  benchmark::RegisterBenchmark("compose_small", compose_small);
  benchmark::RegisterBenchmark("apply_keystroke_1mb", apply_keystroke_1mb);
  std::set<fs::path> files;
  for (const auto& entry : fs::directory_iterator(traces_dir() / "sequential")) {
    if (entry.path().string().ends_with(".json.gz")) files.insert(entry.path());
  }
  for (const auto& file : files) {
    std::string name = file.filename().string();
    name.resize(name.size() - std::string(".json.gz").size());
    benchmark::RegisterBenchmark(("replay:" + name).c_str(), replay, file)->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("compose_fold", compose_fold)
      ->RangeMultiplier(2)
      ->Range(12500, 100000)
      ->Unit(benchmark::kMillisecond)
      ->Complexity(benchmark::oN);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
