// Loading the recorded editing traces under shared/traces (format in its README).
//
// Thread safety: plain functions and value types.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "otsync/ot/op.hpp"

namespace otsync::trace {

/// One keystroke-level edit: at `position`, delete `deleted` code points, then insert `inserted`.
struct patch {
  std::uint64_t position = 0;
  std::uint64_t deleted = 0;
  std::string inserted;
};

/// A transaction: patches applied in order, with the recorded (unreliable) time.
struct txn {
  std::string time;
  std::vector<patch> patches;
};

/// A sequential trace: every patch applies to the result of the one before.
struct sequential_trace {
  std::string name;  ///< file name without `.json.gz`
  std::string start_content;
  std::string end_content;
  std::vector<txn> txns;

  [[nodiscard]] std::size_t patch_count() const noexcept;
};

/// Reads a whole file, un-gzipping it when it is gzip. Throws std::runtime_error
/// naming the file on any failure.
std::string read_file(const std::filesystem::path& path);

/// Loads a `sequential/*.json.gz` trace. Throws std::runtime_error naming the
/// file and the problem when it cannot be read or is not in the format.
sequential_trace load_sequential(const std::filesystem::path& path);

/// The text-unicode op for a patch: `[position, {d: deleted}, inserted]`,
/// leaving out the parts that are zero or empty.
ot::op patch_to_op(const patch& edit);

/// Every patch of the trace as an op, in order.
std::vector<ot::op> trace_ops(const sequential_trace& trace);

}  // namespace otsync::trace
