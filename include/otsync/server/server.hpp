// otsyncd as a library: opens the store, listens, serves until asked to
// stop, then drains (readiness off, no new connections, in-flight commits
// finished, WebSockets closed with 1001 going-away) and returns.
//
// Thread safety: `run` blocks the calling thread (and uses `threads` more);
// `request_stop` may be called from any thread or a signal handler's strand.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "otsync/server/options.hpp"

namespace otsync::server {

class server {
 public:
  explicit server(server_options options);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Opens the store and binds the listener. Returns an error message, or empty on success.
  std::string start();
  /// The bound port (after `start`).
  [[nodiscard]] std::uint16_t port() const;
  /// Serves until SIGTERM/SIGINT or `request_stop`, then shuts down gracefully. Returns the exit status.
  int run();
  void request_stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace otsync::server
