// otsync-load end to end: short runs of every preset against a real otsyncd
// (memory store, random loopback port, temp dir, stopped by PID) and one
// against the real ShareDB 7 peer (bench/peer/sharedb_server.js), checked
// through the JSON report. Every wait is bounded.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.hpp"
#include "support/server_process.hpp"

extern char** environ;

namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

using otsync::test::read_file;
using otsync::test::wait_exit;

fs::path make_temp_dir() {
  return otsync::test::make_temp_dir("otsync-load-test");
}

/// Starts `args[0]` with stdout to `out` and stderr to `err`, the environment without OTSYNC_ settings.
pid_t spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  return otsync::test::spawn_process(args, {out, err, {}, false});
}

using otsync::test::server_process;

struct load_result {
  int exit_code = -1;
  std::string stderr_text;
  json report;
};

/// Runs otsync-load with `args` (bounded to 60 s) and reads its --json report.
load_result run_load(std::vector<std::string> args) {
  auto dir = make_temp_dir();
  args.insert(args.begin(), OTSYNC_LOAD_PATH);
  args.insert(args.end(), {"--json", (dir / "report.json").string()});
  pid_t pid = spawn(args, dir / "stdout", dir / "stderr");
  auto status = wait_exit(pid, 60s);
  if (!status) {
    kill(pid, SIGKILL);
    wait_exit(pid, 5s);
  }
  load_result r;
  if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
  r.stderr_text = read_file(dir / "stderr");
  std::string report = read_file(dir / "report.json");
  if (!report.empty()) r.report = json::parse(report, nullptr, false);
  json printed = json::parse(read_file(dir / "stdout"), nullptr, false);
  if (r.exit_code == 0) {
    EXPECT_EQ(printed, r.report) << "stdout and --json differ";
  }
  fs::remove_all(dir);
  return r;
}

/// The assertions every successful run shares.
void expect_healthy(const load_result& r, pid_t server_pid, bool expect_acks) {
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  ASSERT_TRUE(r.report.is_object()) << r.stderr_text;
  const json& j = r.report;
  SCOPED_TRACE(j.dump(2));
  EXPECT_TRUE(j.at("converged").get<bool>());
  EXPECT_TRUE(j.at("errors").empty());
  EXPECT_EQ(j.at("disconnects"), 0);
  EXPECT_GT(j.at("window_s").get<double>(), 0);
  if (expect_acks) {
    EXPECT_GT(j.at("acked_ops").get<std::uint64_t>(), 0u);
    EXPECT_GT(j.at("acked_ops_per_s").get<double>(), 0);
    EXPECT_GT(j.at("ack_latency_ms").at("p50").get<double>(), 0);
    EXPECT_GE(j.at("ack_latency_ms").at("p99").get<double>(), j.at("ack_latency_ms").at("p50").get<double>());
    EXPECT_GE(j.at("ack_latency_ms").at("max").get<double>(), j.at("ack_latency_ms").at("p99").get<double>());
  }
  const json& server = j.at("server").at(std::to_string(server_pid));
  EXPECT_TRUE(server.at("cpu_percent").is_number());
  EXPECT_TRUE(server.at("kernel_cpu_percent").is_number());
  EXPECT_LE(server.at("kernel_cpu_percent").get<double>(), server.at("cpu_percent").get<double>());
  EXPECT_TRUE(server.at("rss_bytes").is_number());
  EXPECT_GT(server.at("rss_bytes").get<std::uint64_t>(), 0u);
  EXPECT_TRUE(j.at("loadgen").at("cpu_percent").is_number());
  EXPECT_TRUE(j.at("loadgen").at("saturated").is_boolean());
}

class OtsyncLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<server_process>(
        std::vector<std::string>{OTSYNCD_PATH, "--store", "memory:", "--log-level", "warn", "--threads", "1"});
  }
  std::vector<std::string> base(const std::string& preset) {
    return {"--preset", preset, "--url", server_->url(), "--pid", std::to_string(server_->pid()), "--timeout", "15"};
  }
  std::unique_ptr<server_process> server_;
};

TEST_F(OtsyncLoad, ContentionConverges) {
  auto args = base("contention");
  args.insert(args.end(), {"--duration", "2", "--warmup", "0.5"});
  auto r = run_load(args);
  expect_healthy(r, server_->pid(), true);
  EXPECT_EQ(r.report.at("parameters").at("writers"), 20);
  EXPECT_GT(r.report.at("deliveries").get<std::uint64_t>(), 0u);  // every writer sees the others' ops
}

TEST_F(OtsyncLoad, ContentionOnTwoThreads) {
  auto args = base("contention");
  args.insert(args.end(), {"--writers", "6", "--threads", "2", "--duration", "1", "--warmup", "0.2"});
  expect_healthy(run_load(args), server_->pid(), true);
}

TEST_F(OtsyncLoad, PacedSpreadConverges) {
  // --rate: edits compose behind the op in flight.
  auto args = base("spread");
  args.insert(args.end(), {"--docs", "20", "--rate", "200", "--duration", "1.5", "--warmup", "0.3"});
  auto r = run_load(args);
  expect_healthy(r, server_->pid(), true);
  EXPECT_EQ(r.report.at("parameters").at("docs"), 20);
  EXPECT_EQ(r.report.at("total_connections"), 40);
}

TEST_F(OtsyncLoad, FanoutDeliversToReaders) {
  auto args = base("fanout");
  args.insert(args.end(), {"--readers", "50", "--duration", "1.5", "--warmup", "0.3"});
  auto r = run_load(args);
  expect_healthy(r, server_->pid(), true);
  // Each acked op reaches the 50 readers.
  EXPECT_GE(r.report.at("deliveries").get<std::uint64_t>(), r.report.at("acked_ops").get<std::uint64_t>());
  EXPECT_GT(r.report.at("delivery_latency_ms").at("p50").get<double>(), 0);
}

TEST_F(OtsyncLoad, IdleReportsRssPerConnection) {
  auto args = base("idle");
  args.insert(args.end(), {"--connections", "200", "--docs", "10", "--duration", "0.5", "--warmup", "0"});
  auto r = run_load(args);
  expect_healthy(r, server_->pid(), false);
  EXPECT_EQ(r.report.at("acked_ops"), 0);
  EXPECT_EQ(r.report.at("total_connections"), 200);
  EXPECT_TRUE(r.report.at("rss_per_connection_bytes").is_number());
}

TEST(OtsyncLoadErrors, UnreachableServerFailsClearly) {
  // A port nothing listens on: a server started and stopped.
  std::string url;
  {
    server_process server({OTSYNCD_PATH, "--store", "memory:", "--log-level", "warn"});
    url = server.url();
  }
  auto r = run_load({"--url", url, "--writers", "2", "--duration", "0.5", "--timeout", "5"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.stderr_text.find("connecting failed"), std::string::npos) << r.stderr_text;
}

TEST(OtsyncLoadShareDB, ContentionConvergesOnShareDB) {
  fs::path js = fs::path(OTSYNC_TESTS_DIR) / "js";
  std::string node = OTSYNC_NODE_PATH;
  if (node.empty() || !fs::exists(js / "node_modules" / "sharedb")) {
#ifdef OTSYNC_REQUIRE_ALL_TESTS
    FAIL() << "node or tests/js/node_modules missing";
#else
    GTEST_SKIP() << "node or tests/js/node_modules missing (npm ci in tests/js)";
#endif
  }
  server_process peer({node, (js / ".." / ".." / "bench" / "peer" / "sharedb_server.js").string()});
  auto r = run_load({"--preset", "contention", "--writers", "8", "--url", peer.url(), "--pid",
                     std::to_string(peer.pid()), "--duration", "1.5", "--warmup", "0.3", "--timeout", "15"});
  expect_healthy(r, peer.pid(), true);
}

}  // namespace
