// A real redis-server of the test's own: a free 127.0.0.1 port, its own
// temporary directory (AOF on, `appendfsync always`, no RDB saves), started
// with fork/exec and stopped by PID (SIGTERM, then SIGKILL). It never touches
// a system Redis (Debian's package runs one on 6379): after every start the
// server answering on the port must report our child's PID.
//
// The server can be stopped and restarted on the same port and directory
// (outage tests; the AOF brings the data back), frozen with SIGSTOP (a hung
// Redis: connections stay open, nothing answers) and thawed with SIGCONT.
// `command()` runs one raw command over hiredis's synchronous API.
//
// Which binary: $OTSYNC_REDIS_SERVER, else `redis-server` on PATH, else
// /usr/bin/redis-server. When there is none, `redis_missing_reason()` says so;
// tests then skip, or fail when built with OTSYNC_REQUIRE_ALL_TESTS (CI).
//
// Start servers from the main thread: the child gets PR_SET_PDEATHSIG, so a
// test binary that crashes or aborts takes its redis-server with it.
//
// Thread safety: one object per thread; `command()` opens its own connection.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace otsync::store::test {

/// The redis-server binary to run, or "" when there is none.
inline std::string find_redis_server() {
  namespace fs = std::filesystem;
  auto executable = [](const fs::path& p) {
    return !p.empty() && ::access(p.c_str(), X_OK) == 0 && !fs::is_directory(p);
  };
  if (const char* explicit_path = std::getenv("OTSYNC_REDIS_SERVER"); explicit_path && *explicit_path) {
    return executable(explicit_path) ? std::string(explicit_path) : std::string();
  }
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      if (!dir.empty() && executable(fs::path(dir) / "redis-server")) return (fs::path(dir) / "redis-server").string();
    }
  }
  return executable("/usr/bin/redis-server") ? "/usr/bin/redis-server" : "";
}

/// Why the Redis tests cannot run here ("" when they can).
inline std::string redis_missing_reason() {
  if (!find_redis_server().empty()) return "";
  return "redis-server not found (OTSYNC_REDIS_SERVER, PATH, /usr/bin/redis-server): install the Debian "
         "package redis-server (scripts/install-deps.sh)";
}

#ifdef OTSYNC_REQUIRE_ALL_TESTS
inline constexpr bool redis_tests_required = true;
#else
inline constexpr bool redis_tests_required = false;
#endif

/// In a test body or SetUp: skips (or fails, under OTSYNC_REQUIRE_ALL_TESTS)
/// when there is no redis-server.
#define OTSYNC_REQUIRE_REDIS_SERVER()                                                                                \
  do {                                                                                                               \
    if (const std::string otsync_missing = ::otsync::store::test::redis_missing_reason(); !otsync_missing.empty()) { \
      if (::otsync::store::test::redis_tests_required) {                                                             \
        FAIL() << otsync_missing << " (required: built with OTSYNC_REQUIRE_ALL_TESTS)";                              \
      } else {                                                                                                       \
        GTEST_SKIP() << otsync_missing;                                                                              \
      }                                                                                                              \
    }                                                                                                                \
  } while (false)

/// A reply from `redis_server::command`, converted from hiredis's.
struct redis_reply {
  int type = REDIS_REPLY_NIL;
  std::string str;  ///< string, status and error replies
  long long integer = 0;
  std::vector<redis_reply> elements;

  [[nodiscard]] bool is_error() const noexcept { return type == REDIS_REPLY_ERROR; }
  static redis_reply from(const redisReply* r) {
    redis_reply out;
    if (!r) return out;
    out.type = r->type;
    if (r->str) out.str.assign(r->str, r->len);
    out.integer = r->integer;
    for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(from(r->element[i]));
    return out;
  }
};

/// A free TCP port on 127.0.0.1 (free when asked: bind to 0, read it, close).
inline std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

class redis_server {
 public:
  static constexpr std::chrono::seconds ready_timeout{20};
  static constexpr std::chrono::seconds stop_grace{5};

  /// `extra_args`: more redis-server flags (cluster mode, replication). `cluster_bus`: a free port
  /// of its own for the cluster bus too (the default, port + 10000, may be taken or past 65535).
  explicit redis_server(std::vector<std::string> extra_args = {}, bool cluster_bus = false)
      : binary_(find_redis_server()), extra_args_(std::move(extra_args)), cluster_bus_(cluster_bus) {}
  ~redis_server() { stop(); }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  /// Starts on a fresh free port (a few attempts if the port is taken in
  /// between). Returns "" or what went wrong (with the server's log).
  std::string start() {
    if (binary_.empty()) return redis_missing_reason();
    std::string error;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_loopback_port();
      if (port_ == 0) return "no free loopback port";
      if (cluster_bus_) {
        bus_port_ = free_loopback_port();
        if (bus_port_ == 0 || bus_port_ == port_) continue;
      }
      error = launch();
      if (error.empty()) return "";
    }
    return error;
  }

  /// Starts again on the same port and directory (after `stop`/`kill`); the
  /// AOF brings the data back. Returns "" or what went wrong.
  std::string restart() {
    stop();
    return launch();
  }

  /// SIGTERM, then SIGKILL after the grace period; waits for the process.
  void stop() { terminate(SIGTERM); }
  /// SIGKILL at once (a crash: only what the AOF has fsynced survives).
  void kill() { terminate(SIGKILL); }
  /// Freezes / thaws the process (a hung Redis).
  void pause() const {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() const {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// The cluster bus port (0 unless `cluster_bus`).
  [[nodiscard]] std::uint16_t bus_port() const noexcept { return bus_port_; }
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_.path(); }
  [[nodiscard]] std::filesystem::path log_path() const { return dir_.path() / "redis.log"; }
  [[nodiscard]] std::string uri() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  /// The server's log, for failure messages.
  [[nodiscard]] std::string log() const {
    std::ifstream in(log_path());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  /// Runs one command on a new connection; nullopt (and `error`) when the
  /// server cannot be reached in `timeout`.
  std::optional<redis_reply> command(const std::vector<std::string>& args, std::string* error = nullptr,
                                     std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) const {
    const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                     static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    std::unique_ptr<redisContext, decltype(&redisFree)> context(redisConnectWithTimeout("127.0.0.1", port_, tv),
                                                                &redisFree);
    if (!context || context->err) {
      if (error) *error = context ? context->errstr : "cannot allocate a hiredis context";
      return std::nullopt;
    }
    redisSetTimeout(context.get(), tv);
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* raw = static_cast<redisReply*>(
        redisCommandArgv(context.get(), static_cast<int>(argv.size()), argv.data(), lengths.data()));
    if (!raw) {
      if (error) *error = context->errstr;
      return std::nullopt;
    }
    redis_reply reply = redis_reply::from(raw);
    freeReplyObject(raw);
    return reply;
  }

  /// The keys matching `pattern` (KEYS: test data only).
  std::vector<std::string> keys(const std::string& pattern) const {
    std::vector<std::string> out;
    auto reply = command({"KEYS", pattern});
    EXPECT_TRUE(reply && reply->type == REDIS_REPLY_ARRAY) << "KEYS " << pattern << " failed";
    if (reply) {
      for (const auto& element : reply->elements) out.push_back(element.str);
    }
    return out;
  }

  /// One field of INFO (e.g. "process_id", "cmdstat_evalsha"), "" when absent.
  std::string info_field(const std::string& section, const std::string& field) const {
    auto reply = command({"INFO", section});
    if (!reply || reply->is_error()) return "";
    std::stringstream lines(reply->str);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.starts_with(field + ":")) return line.substr(field.size() + 1);
    }
    return "";
  }

 private:
  std::string launch() {
    std::vector<std::string> args{binary_,
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--dir",
                                  dir_.path().string(),
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "yes",
                                  "--appendfsync",
                                  "always",
                                  "--daemonize",
                                  "no",
                                  "--logfile",
                                  log_path().string(),
                                  "--protected-mode",
                                  "yes"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    if (cluster_bus_) {
      args.emplace_back("--cluster-port");
      args.push_back(std::to_string(bus_port_));
    }
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child < 0) return "fork failed";
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        ::dup2(devnull, STDIN_FILENO);
        ::dup2(devnull, STDOUT_FILENO);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = child;
    return wait_ready();
  }

  // Until PING answers PONG (not -LOADING) from our own process, bounded.
  std::string wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
    std::string last_error;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "redis-server exited at start (status " + std::to_string(status) + "); log:\n" + log();
      }
      auto reply = command({"PING"}, &last_error, std::chrono::milliseconds(500));
      if (reply && reply->type == REDIS_REPLY_STATUS && reply->str == "PONG") {
        const std::string answering = info_field("server", "process_id");
        if (answering != std::to_string(pid_)) {
          stop();
          return "port " + std::to_string(port_) + " is answered by another Redis (pid " + answering + ")";
        }
        return "";
      }
      if (reply) last_error = reply->str;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    return "redis-server did not answer PING within " + std::to_string(ready_timeout.count()) +
           " s (last: " + last_error + "); log:\n" + log();
  }

  void terminate(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // a paused server cannot handle SIGTERM
    ::kill(pid_, signal);
    const auto deadline = std::chrono::steady_clock::now() + stop_grace;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

  std::string binary_;
  std::vector<std::string> extra_args_;
  bool cluster_bus_ = false;
  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::uint16_t bus_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace otsync::store::test
