// A server process (otsyncd or the ShareDB peer) for the integration tests:
// on a free loopback port (or the port it had, after `restart`), its output in
// a temp dir, stopped by PID. Every wait is bounded.
//
// Thread safety: use from one thread.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace otsync::test {

class server_process {
 public:
  /// Starts `args` plus `--listen 127.0.0.1:0 --port-file FILE`; waits for the port.
  explicit server_process(std::vector<std::string> args)
      : dir_(make_temp_dir("otsync-server")), args_(std::move(args)) {
    start("127.0.0.1:0");
  }
  ~server_process() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  /// SIGTERM, then SIGKILL after 10 s.
  void stop() { end(SIGTERM); }
  /// SIGKILL: a crash.
  void kill_hard() { end(SIGKILL); }
  /// Starts the same command again on the same port.
  void restart() { start("127.0.0.1:" + std::to_string(port_)); }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  [[nodiscard]] std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ws"; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] unsigned port() const { return port_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] std::string log() const { return read_file(dir_ / "log"); }

 private:
  void start(const std::string& listen) {
    using namespace std::chrono_literals;
    auto port_file = dir_ / "port";
    std::filesystem::remove(port_file);
    std::vector<std::string> args = args_;
    args.insert(args.end(), {"--listen", listen, "--port-file", port_file.string()});
    pid_ = spawn_process(args, {dir_ / "stdout", dir_ / "log", {}, true});
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(port_file);
      unsigned port = 0;
      if (in >> port && port > 0) {
        port_ = port;
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("server exited during startup: " + log());
      }
      std::this_thread::sleep_for(10ms);
    }
    stop();
    throw std::runtime_error("server did not write its port file: " + log());
  }
  void end(int sig) {
    using namespace std::chrono_literals;
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // a stopped process cannot act on SIGTERM
    ::kill(pid_, sig);
    if (!wait_exit(pid_, 10s)) {
      ::kill(pid_, SIGKILL);
      wait_exit(pid_, 5s);
    }
    pid_ = -1;
  }

  std::filesystem::path dir_;
  std::vector<std::string> args_;
  pid_t pid_ = -1;
  unsigned port_ = 0;
};

}  // namespace otsync::test
