// The run coordinator: opens every connection (bounded concurrency per I/O
// thread), drives the phases (warmup, measured window, settling), checks
// convergence against a fresh fetch of each document, samples server and
// load-generator CPU and memory, and gathers the statistics.
//
// Thread safety: `run_load` is called once, from the main thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "histogram.hpp"
#include "options.hpp"

namespace otsync::load {

struct server_sample {
  int pid = 0;
  std::optional<double> cpu_percent;           ///< over the measured window; 100 = one core
  std::optional<double> kernel_cpu_percent;    ///< the part of cpu_percent spent in the kernel (stime)
  std::optional<std::uint64_t> rss_bytes;      ///< at the end of the run
  std::optional<std::uint64_t> rss_before;     ///< before the connections opened
  std::optional<std::uint64_t> rss_connected;  ///< once every connection was subscribed
};

struct run_result {
  std::string run_id;
  std::uint64_t connections = 0;  ///< load connections (writers, readers, idle)
  double window_s = 0;
  std::uint64_t window_acks = 0;
  std::uint64_t total_acks = 0;
  std::uint64_t window_deliveries = 0;
  histogram ack_latency;
  histogram delivery_latency;
  std::map<std::string, std::uint64_t> errors;
  std::uint64_t disconnects = 0;
  bool converged = false;
  std::string mismatch;  ///< the first difference found, when not converged
  std::vector<server_sample> servers;
  std::optional<double> rss_per_connection;
  double loadgen_cpu_percent = 0;
  bool loadgen_saturated = false;
};

/// Runs the load. Returns 0, or a non-zero exit code after printing why on
/// stderr (connecting failed). Throws std::runtime_error on bad URLs.
int run_load(const options& opts, run_result& out);

}  // namespace otsync::load
