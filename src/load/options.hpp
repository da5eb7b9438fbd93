// otsync-load's settings: the command line, with presets supplying defaults
// that explicit flags override.
//
// Thread safety: plain value types; `parse_options` is not reentrant (CLI11).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace otsync::load {

/// The run's shape after presets and flags are applied.
struct options {
  std::string preset = "contention";
  std::uint32_t docs = 1;
  std::uint32_t writers = 0;      ///< writers per document
  std::uint32_t readers = 0;      ///< readers per document
  std::uint32_t connections = 0;  ///< idle connections in total, spread over the documents
  double rate = 0;                ///< ops/s per writer; 0 = closed loop (next op on ack)
  /// Paced writers: each interval is 1/rate times a factor drawn from [1 - jitter, 1 + jitter]
  /// (every writer also starts at its own random phase, so writers never send in step).
  double rate_jitter = 0;
  double duration_s = 10;
  double warmup_s = 2;
  double timeout_s = 10;  ///< connect phase, and settling at the end
  std::vector<std::string> urls{"ws://127.0.0.1:8080/ws"};
  std::string tls_ca_file;                ///< wss://: trust these CAs instead of the system's store
  bool tls_insecure_skip_verify = false;  ///< wss://: accept any certificate (tests only)
  std::string collection = "load";
  std::vector<int> pids;
  unsigned threads = 1;
  std::string json_file;
  std::uint64_t seed = 1;
  std::uint32_t max_doc_chars = 2000;  ///< writers delete rather than insert past this size
  std::uint32_t connect_concurrency = 256;
  bool quiet = false;  ///< no progress lines
};

/// Parses the command line. Returns the exit code to use instead of running
/// (help printed, or an error reported on stderr), or nullopt to go on.
std::optional<int> parse_options(int argc, char** argv, options& out);

}  // namespace otsync::load
