#include "otsync/pubsub/memory_feed.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace otsync::pubsub {
namespace {

// One feed's subscriptions, shared with the hub's delivery thread.
struct feed_state {
  explicit feed_state(std::string id) : instance_id(std::move(id)) {}

  using subscriber = std::pair<op_feed::op_handler, op_feed::resync_handler>;

  std::vector<subscriber> subscribers_of(const store::doc_key& key) {
    std::lock_guard lock(mutex);
    std::vector<subscriber> out;
    auto it = documents.find(key);
    if (it == documents.end()) return out;
    for (const auto& [token, s] : it->second) out.push_back(s);
    return out;
  }

  std::vector<store::doc_key> subscribed_keys() {
    std::lock_guard lock(mutex);
    std::vector<store::doc_key> out;
    for (const auto& [key, subscribers] : documents) out.push_back(key);
    return out;
  }

  void deliver(std::string_view publisher, const store::doc_key& key, const oplog::op_record& op) {
    auto subscribers = subscribers_of(key);
    if (subscribers.empty()) return;  // not subscribed: Redis would not send it either
    if (!instance_id.empty() && publisher == instance_id) {
      ++own_skipped;  // this instance's own op, already applied here
      return;
    }
    ++messages;
    for (auto& [on_op, on_resync] : subscribers) on_op(op);
  }

  void resync(const store::doc_key& key) {
    auto subscribers = subscribers_of(key);
    if (subscribers.empty()) return;
    ++resyncs;
    for (auto& [on_op, on_resync] : subscribers) on_resync();
  }

  const std::string instance_id;
  std::mutex mutex;
  std::map<store::doc_key, std::map<std::uint64_t, subscriber>> documents;
  std::atomic<std::uint64_t> next_token{0};
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> resyncs{0};
  std::atomic<std::uint64_t> own_skipped{0};
};

}  // namespace

struct memory_hub::impl {
  // An op for every feed, or (with a target and no op) one document's resync on one feed.
  struct event {
    std::shared_ptr<feed_state> target;
    store::doc_key key;
    std::string publisher;
    std::optional<oplog::op_record> op;
  };

  explicit impl(std::size_t max_ops) : max_queued_ops(max_ops) {}

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait(lock, [this] { return stopping || overflowed || !queue.empty(); });
      if (stopping) return;
      if (overflowed) {
        // What was queued is gone: every subscription catches up from the op log.
        overflowed = false;
        auto targets = feeds;
        delivering = true;
        lock.unlock();
        for (const auto& feed : targets) {
          for (const auto& key : feed->subscribed_keys()) feed->resync(key);
        }
        lock.lock();
      } else {
        event next = std::move(queue.front());
        queue.pop_front();
        if (next.op) --queued_ops;
        auto targets = next.target ? std::vector<std::shared_ptr<feed_state>>{next.target} : feeds;
        delivering = true;
        lock.unlock();
        for (const auto& feed : targets) {
          if (next.op) {
            feed->deliver(next.publisher, next.key, *next.op);
          } else {
            feed->resync(next.key);
          }
        }
        lock.lock();
      }
      delivering = false;
      idle.notify_all();
    }
  }

  void publish(std::string_view publisher, const store::doc_key& key, std::span<const oplog::op_record> ops) {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
      if (queued_ops + ops.size() > max_queued_ops) {
        for (auto it = queue.begin(); it != queue.end();) it = it->op ? queue.erase(it) : std::next(it);
        queued_ops = 0;
        overflowed = true;
      } else {
        for (const auto& op : ops) queue.push_back({nullptr, key, std::string(publisher), op});
        queued_ops += ops.size();
      }
    }
    wake.notify_one();
  }

  void resync_later(std::shared_ptr<feed_state> feed, const store::doc_key& key) {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
      queue.push_back({std::move(feed), key, {}, std::nullopt});
    }
    wake.notify_one();
  }

  void remove(const feed_state* feed) {
    std::unique_lock lock(mutex);
    std::erase_if(feeds, [feed](const auto& f) { return f.get() == feed; });
    std::erase_if(queue, [feed](const event& e) { return e.target.get() == feed; });
    // No handler of the feed may run once it is gone (unless it is going from inside one).
    if (std::this_thread::get_id() != thread.get_id()) idle.wait(lock, [this] { return !delivering; });
  }

  const std::size_t max_queued_ops;
  std::mutex mutex;
  std::condition_variable wake;
  std::condition_variable idle;
  std::deque<event> queue;
  std::size_t queued_ops = 0;
  bool overflowed = false;
  bool delivering = false;
  bool stopping = false;
  std::vector<std::shared_ptr<feed_state>> feeds;
  std::thread thread;
};

namespace {

class memory_feed final : public op_feed {
 public:
  memory_feed(std::shared_ptr<memory_hub::impl> hub, std::shared_ptr<feed_state> state)
      : hub_(std::move(hub)), state_(std::move(state)) {}
  ~memory_feed() override { hub_->remove(state_.get()); }
  memory_feed(const memory_feed&) = delete;
  memory_feed& operator=(const memory_feed&) = delete;

  std::uint64_t subscribe(const store::doc_key& key, op_handler on_op, resync_handler on_resync) override {
    const std::uint64_t token = ++state_->next_token;
    bool first = false;
    {
      std::lock_guard lock(state_->mutex);
      auto& subscribers = state_->documents[key];
      first = subscribers.empty();
      subscribers.emplace(token, std::make_pair(std::move(on_op), std::move(on_resync)));
    }
    // As Redis confirms a new subscription: then the subscriber catches up.
    if (first) hub_->resync_later(state_, key);
    return token;
  }

  void unsubscribe(const store::doc_key& key, std::uint64_t token) override {
    std::lock_guard lock(state_->mutex);
    auto it = state_->documents.find(key);
    if (it == state_->documents.end()) return;
    it->second.erase(token);
    if (it->second.empty()) state_->documents.erase(it);
  }

  bool connected() const override { return true; }
  feed_stats stats() const override {
    return {state_->messages.load(), state_->resyncs.load(), 1, state_->own_skipped.load()};
  }
  store::backend_health health() const override { return {true, "memory hub", {}}; }

 private:
  std::shared_ptr<memory_hub::impl> hub_;
  std::shared_ptr<feed_state> state_;
};

}  // namespace

memory_hub::memory_hub(std::size_t max_queued_ops) : impl_(std::make_shared<impl>(max_queued_ops)) {
  impl_->thread = std::thread([hub = impl_.get()] { hub->run(); });
}

memory_hub::~memory_hub() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
    impl_->queue.clear();
  }
  impl_->wake.notify_all();
  impl_->thread.join();
}

store::commit_listener memory_hub::publisher() {
  // Weak: a memory outliving its hub publishes nowhere.
  return [hub = std::weak_ptr<impl>(impl_)](std::string_view publisher, const store::doc_key& key,
                                            std::span<const oplog::op_record> ops) {
    if (auto alive = hub.lock()) alive->publish(publisher, key, ops);
  };
}

void memory_hub::publish(std::string_view publisher, const store::doc_key& key, std::span<const oplog::op_record> ops) {
  impl_->publish(publisher, key, ops);
}

void memory_hub::resync_everyone() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    for (auto it = impl_->queue.begin(); it != impl_->queue.end();)
      it = it->op ? impl_->queue.erase(it) : std::next(it);
    impl_->queued_ops = 0;
    impl_->overflowed = true;
  }
  impl_->wake.notify_one();
}

std::unique_ptr<op_feed> memory_hub::open_feed(std::string instance_id) {
  auto state = std::make_shared<feed_state>(std::move(instance_id));
  {
    std::lock_guard lock(impl_->mutex);
    impl_->feeds.push_back(state);
  }
  return std::make_unique<memory_feed>(impl_, std::move(state));
}

}  // namespace otsync::pubsub
