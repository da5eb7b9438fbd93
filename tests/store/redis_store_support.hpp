// What the Redis store tests (one server, a cluster) share: roomy timeouts for
// 2 cores under ASan, a bounded wait, and opening a store that is connected.
//
// Thread safety: free functions; `eventually` polls from the calling thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "otsync/store/redis_store.hpp"

namespace otsync::store::test {

/// How long a test waits for a store to (re)connect.
inline constexpr auto connect_wait = std::chrono::seconds(15);

/// Sets the client timeouts every Redis store test starts from (the host and key prefix are the caller's).
inline redis_options with_test_timeouts(redis_options options) {
  using namespace std::chrono_literals;
  options.command_timeout = 3000ms;  // roomy: the suite also runs under ASan on 2 cores
  options.connect_timeout = 1000ms;
  options.reconnect_min = 10ms;
  options.reconnect_max = 200ms;
  return options;
}

/// Polls `predicate` every 5 ms until it holds (true) or `timeout` passes (false).
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// Opens a store and waits (bounded) until it is connected.
inline std::unique_ptr<redis_store> open_connected(const redis_options& options) {
  auto s = open_redis_store(options);
  if (!s) {
    ADD_FAILURE() << "open_redis_store returned nullptr";
    return nullptr;
  }
  EXPECT_TRUE(eventually([&] { return s->connected(); }, connect_wait))
      << "not connected to " << options.host << ":" << options.port << " after " << connect_wait.count() << " s";
  return s;
}

}  // namespace otsync::store::test
