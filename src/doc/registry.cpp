#include "otsync/doc/registry.hpp"

#include "document.hpp"

#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace otsync::doc {
namespace asio = boost::asio;

registry::registry(asio::any_io_executor executor, store::store& storage, document_options options,
                   document_observer* observer, pubsub::op_feed* feed)
    : executor_(std::move(executor)),
      storage_(storage),
      options_(options),
      observer_(observer),
      feed_(feed),
      sweep_timer_(asio::make_strand(executor_)) {}

registry::~registry() = default;

void registry::place_on(std::vector<asio::io_context::executor_type> contexts) {
  homes_ = std::move(contexts);
}

asio::any_io_executor registry::home_for_new_document() {
  if (homes_.empty()) return asio::make_strand(executor_);
  for (const auto& home : homes_) {
    if (home.running_in_this_thread()) return home;
  }
  // Opened from a thread of no context (a store's or the op feed's): spread them.
  return homes_[next_home_.fetch_add(1, std::memory_order_relaxed) % homes_.size()];
}

std::shared_ptr<document> registry::get(const store::doc_key& key) {
  std::lock_guard lock(mutex_);
  auto& slot = documents_[key];
  if (!slot) slot = std::make_shared<document>(home_for_new_document(), *this, key);
  return slot;
}

void registry::forget(const document* doc) {
  std::lock_guard lock(mutex_);
  auto it = documents_.find(doc->key());
  if (it != documents_.end() && it->second.get() == doc) documents_.erase(it);
}

std::size_t registry::open_documents() const {
  std::lock_guard lock(mutex_);
  return documents_.size();
}

bool registry::quiescent() const {
  std::lock_guard lock(mutex_);
  for (const auto& [key, doc] : documents_) {
    if (doc->busy()) return false;
  }
  return true;
}

void registry::start_eviction(std::chrono::milliseconds idle_after, std::chrono::milliseconds period) {
  idle_after_ = idle_after;
  sweep_period_ = period;
  sweeping_ = true;
  asio::post(sweep_timer_.get_executor(), [this] { sweep(); });
}

void registry::stop_eviction() {
  sweeping_ = false;
  asio::post(sweep_timer_.get_executor(), [this] { sweep_timer_.cancel(); });
}

void registry::relieve_memory() {
  auto now = std::chrono::steady_clock::now();
  auto last = last_relief_.load(std::memory_order_relaxed);
  auto ticks = now.time_since_epoch().count();
  if (ticks - last <
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::milliseconds(100)).count() ||
      !last_relief_.compare_exchange_strong(last, ticks)) {
    return;
  }
  std::vector<std::shared_ptr<document>> open;
  {
    std::lock_guard lock(mutex_);
    open.reserve(documents_.size());
    for (const auto& [key, doc] : documents_) open.push_back(doc);
  }
  for (auto& doc : open) asio::post(doc->executor_, [doc, now] { doc->try_evict(now); });
}

void registry::sweep() {
  if (!sweeping_) return;
  std::vector<std::shared_ptr<document>> open;
  {
    std::lock_guard lock(mutex_);
    open.reserve(documents_.size());
    for (const auto& [key, doc] : documents_) open.push_back(doc);
  }
  auto idle_since = std::chrono::steady_clock::now() - idle_after_;
  for (auto& doc : open) {
    // Each document decides on its own strand, where its state lives.
    asio::post(doc->executor_, [doc, idle_since] { doc->try_evict(idle_since); });
  }
  sweep_timer_.expires_after(sweep_period_);
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) sweep();
  });
}

}  // namespace otsync::doc
