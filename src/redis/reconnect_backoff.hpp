// Exponential backoff with jitter between reconnect attempts, shared by the
// Redis store and the op feed, so that instances do not reconnect in step.
//
// Thread safety: none; use on the owning io_context's thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace otsync::redis {

class reconnect_backoff {
 public:
  reconnect_backoff(boost::asio::io_context& io, std::chrono::milliseconds min, std::chrono::milliseconds max)
      : timer_(io), min_(min), max_(max), next_(min) {}

  /// Runs `attempt` after the current delay plus up to half of it again, and doubles the delay.
  template <class Fn>
  void schedule(Fn attempt) {
    std::uniform_int_distribution<long> jitter(0, next_.count() / 2 + 1);
    timer_.expires_after(next_ + std::chrono::milliseconds(jitter(rng_)));
    next_ = std::min(next_ * 2, max_);
    timer_.async_wait([attempt = std::move(attempt)](boost::system::error_code ec) mutable {
      if (!ec) attempt();
    });
  }
  /// After a successful connect: the next outage starts from the shortest delay.
  void reset() noexcept { next_ = min_; }
  void cancel() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds next_;
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace otsync::redis
