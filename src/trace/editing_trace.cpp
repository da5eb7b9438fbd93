#include "otsync/trace/editing_trace.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace otsync::trace {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw std::runtime_error(path.string() + ": " + what);
}

}  // namespace

std::size_t sequential_trace::patch_count() const noexcept {
  std::size_t count = 0;
  for (const auto& t : txns) count += t.patches.size();
  return count;
}

std::string read_file(const std::filesystem::path& path) {
  // gzread reads plain files as they are, so one path serves both.
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) fail(path, std::string("cannot open: ") + std::strerror(errno));
  gzbuffer(file, 1U << 17U);
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const int n = gzread(file, buffer, sizeof buffer);
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      fail(path, "cannot read: " + message);
    }
    if (n == 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  gzclose(file);
  return out;
}

sequential_trace load_sequential(const std::filesystem::path& path) {
  const nlohmann::json doc = nlohmann::json::parse(read_file(path), nullptr, false);
  if (doc.is_discarded()) fail(path, "not valid JSON");
  if (!doc.is_object() || !doc.contains("txns") || !doc["txns"].is_array() ||
      !doc.value("endContent", nlohmann::json()).is_string()) {
    fail(path, "not a sequential trace (needs txns[] and endContent)");
  }
  sequential_trace trace;
  trace.name = path.filename().string();
  if (const auto suffix = trace.name.find(".json"); suffix != std::string::npos) trace.name.resize(suffix);
  trace.start_content = doc.value("startContent", std::string());
  trace.end_content = doc["endContent"].get<std::string>();
  trace.txns.reserve(doc["txns"].size());
  for (const auto& item : doc["txns"]) {
    txn t;
    t.time = item.value("time", std::string());
    const auto& patches = item.at("patches");
    t.patches.reserve(patches.size());
    for (const auto& p : patches) {
      if (!p.is_array() || p.size() != 3 || !p[0].is_number_unsigned() || !p[1].is_number_unsigned() ||
          !p[2].is_string()) {
        fail(path, "bad patch " + p.dump() + " (want [pos, delCount, insStr])");
      }
      t.patches.push_back({p[0].get<std::uint64_t>(), p[1].get<std::uint64_t>(), p[2].get<std::string>()});
    }
    trace.txns.push_back(std::move(t));
  }
  return trace;
}

ot::op patch_to_op(const patch& edit) {
  ot::op_builder builder(3);
  builder.skip(edit.position).erase(edit.deleted).insert(edit.inserted);
  // A trailing skip cannot occur: every patch deletes or inserts.
  return std::move(builder).finish();
}

std::vector<ot::op> trace_ops(const sequential_trace& trace) {
  std::vector<ot::op> ops;
  ops.reserve(trace.patch_count());
  for (const auto& t : trace.txns) {
    for (const auto& p : t.patches) ops.push_back(patch_to_op(p));
  }
  return ops;
}

}  // namespace otsync::trace
