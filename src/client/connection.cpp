#include "otsync/client/connection.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "client_core.hpp"
#include "file_journal.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "websocket_transport.hpp"

namespace otsync::client {

namespace asio = boost::asio;

struct connection::impl : std::enable_shared_from_this<impl> {
  explicit impl(connection_options opts)
      : options(std::move(opts)),
        url(parse_ws_url(options.url)),
        journal(options.offline_dir.empty()
                    ? nullptr
                    : std::make_unique<file_journal>(options.offline_dir, options.offline_fsync)),
        core(journal.get(), startup_events, core_options(options)),
        work(io.get_executor()),
        reconnect_timer(io),
        delay(options.reconnect_min) {}

  static client_core_options core_options(const connection_options& o) {
    client_core_options c;
    c.max_remote_presences = o.max_remote_presences;
    c.max_presence_bytes = o.max_presence_bytes;
    return c;
  }

  connection_options options;
  ws_url url;
  std::unique_ptr<file_journal> journal;
  client_events startup_events;
  client_core core;  ///< guarded by `mutex`
  mutable std::mutex mutex;
  mutable std::condition_variable changed;

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::unique_ptr<websocket_transport> transport;  ///< io thread only
  asio::steady_timer reconnect_timer;
  std::chrono::milliseconds delay;
  std::mt19937 rng{std::random_device{}()};
  std::thread thread;
  std::atomic<connection_state> state{connection_state::connecting};
  std::atomic<std::uint64_t> handshakes{0};
  std::atomic<bool> closing{false};

  void start() {
    transport = std::make_unique<websocket_transport>(
        io, url, options.keepalive,
        transport_callbacks{[this] { on_open(); }, [this](std::string_view text) { on_frame(text); },
                            [this](std::string why) { on_closed(std::move(why)); }, options.token_provider},
        transport_tls{options.tls_ca_file, options.tls_insecure_skip_verify_for_tests_only});
    deliver(std::move(startup_events));
    thread = std::thread([self = shared_from_this()] { self->io.run(); });
    asio::post(io, [this] { transport->connect(); });
  }

  void stop() {
    if (closing.exchange(true)) return;
    asio::post(io, [this] {
      reconnect_timer.cancel();
      transport->shutdown();
      client_events events;
      {
        std::lock_guard lock(mutex);
        core.on_disconnected(events);
      }
      set_state(connection_state::closed);
      deliver(std::move(events));
      work.reset();
    });
    if (!thread.joinable()) return;
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // closed from a callback: the thread ends by itself
    } else {
      thread.join();
    }
  }

  /// Runs callbacks on the connection's thread; dropped once it has stopped
  /// (a weak owner, so a handler that never runs keeps nothing alive).
  void post_events(client_events events) {
    if (events.empty()) return;
    asio::post(io, [weak = weak_from_this(), events = std::move(events)]() mutable {
      if (auto self = weak.lock()) self->deliver(std::move(events));
    });
  }

  void set_state(connection_state next) {
    state.store(next, std::memory_order_release);
    {
      std::lock_guard lock(mutex);  // pairs with the waits' predicate checks
    }
    changed.notify_all();
    if (options.on_state) options.on_state(next);
  }

  /// Sends frames from any thread (on the io thread, in order).
  void send(client_core::outbox out) {
    if (out.empty()) return;
    asio::post(io, [this, out = std::move(out)]() mutable {
      for (auto& frame : out) transport->send(std::move(frame));
    });
  }

  void deliver(client_events events) {
    for (auto& e : events.errors)
      if (options.on_error) options.on_error(e);
    for (auto& [callback, c] : events.changes) callback(c);
    for (auto& [callback, p] : events.presences) callback(p);
  }

  void on_open() {
    std::string hello;
    {
      std::lock_guard lock(mutex);
      hello = core.on_open();
    }
    transport->send(std::move(hello));
  }

  void on_frame(std::string_view text) {
    client_core::outbox out;
    client_events events;
    bool now_connected = false;
    {
      std::lock_guard lock(mutex);
      bool was_connected = core.connected();
      core.on_frame(text, out, events);
      now_connected = !was_connected && core.connected();
    }
    for (auto& frame : out) transport->send(std::move(frame));
    changed.notify_all();
    if (now_connected) {
      delay = options.reconnect_min;
      handshakes.fetch_add(1);
      set_state(connection_state::connected);
    }
    deliver(std::move(events));
  }

  void on_closed(std::string why) {
    client_events events;
    {
      std::lock_guard lock(mutex);
      core.on_disconnected(events);
    }
    if (closing) return;
    deliver(std::move(events));
    set_state(connection_state::disconnected);
    if (options.on_error) options.on_error({"", "", "OTSYNC_CLIENT_DISCONNECTED", why});
    // Exponential backoff with jitter: up to half the delay again, so clients dropped together spread out.
    std::uniform_int_distribution<long> jitter(0, delay.count() / 2);
    reconnect_timer.expires_after(delay + std::chrono::milliseconds(jitter(rng)));
    delay = std::min(delay * 2, options.reconnect_max);
    reconnect_timer.async_wait([this](boost::system::error_code ec) {
      if (ec || closing) return;
      set_state(connection_state::connecting);
      transport->connect();
    });
  }

  template <class Pred>
  bool wait(std::chrono::milliseconds timeout, Pred pred) const {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return pred(); });
  }
};

connection::connection(connection_options options) : impl_(std::make_shared<impl>(std::move(options))) {
  impl_->start();
}

connection::~connection() {
  close();
}

void connection::close() {
  impl_->stop();
}

connection_state connection::state() const noexcept {
  return impl_->state.load(std::memory_order_acquire);
}

std::string connection::id() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->core.id();
}

std::uint64_t connection::reconnects() const noexcept {
  auto n = impl_->handshakes.load();
  return n > 0 ? n - 1 : 0;
}

bool connection::wait_connected(std::chrono::milliseconds timeout) const {
  return impl_->wait(timeout, [this] { return impl_->core.connected(); });
}

std::shared_ptr<document> connection::open(const std::string& collection, const std::string& id,
                                           std::optional<std::string> create_with) {
  client_core::outbox out;
  client_events events;
  doc_entry* entry = nullptr;
  {
    std::lock_guard lock(impl_->mutex);
    entry = &impl_->core.open(collection, id, std::move(create_with), out, events);
  }
  impl_->send(std::move(out));
  impl_->post_events(std::move(events));
  return std::make_shared<document>(impl_, entry);
}

document::document(std::shared_ptr<connection::impl> owner, doc_entry* entry)
    : owner_(std::move(owner)), entry_(entry), collection_(entry->collection), id_(entry->id) {}

std::string document::text() const {
  std::lock_guard lock(owner_->mutex);
  return entry_->replica ? entry_->replica->text().to_string() : std::string();
}

std::uint64_t document::version() const {
  std::lock_guard lock(owner_->mutex);
  return entry_->replica ? entry_->replica->version() : 0;
}

bool document::loaded() const {
  std::lock_guard lock(owner_->mutex);
  return entry_->loaded;
}

bool document::exists() const {
  std::lock_guard lock(owner_->mutex);
  return entry_->replica != nullptr;
}

namespace {
bool is_synchronised(const doc_entry& entry) {
  return entry.subscribed && entry.loaded && !entry.fetching && !entry.reloading && entry.create_seq == 0 &&
         (!entry.replica || entry.replica->synchronised());
}
}  // namespace

bool document::synchronised() const {
  std::lock_guard lock(owner_->mutex);
  return is_synchronised(*entry_);
}

std::uint64_t document::acknowledged() const {
  std::lock_guard lock(owner_->mutex);
  return entry_->acks;
}

std::error_code document::submit(const ot::op& edit) {
  client_core::outbox out;
  client_events events;
  std::error_code error;
  {
    std::lock_guard lock(owner_->mutex);
    error = owner_->core.submit(*entry_, edit, out, events);
  }
  owner_->send(std::move(out));
  owner_->post_events(std::move(events));
  return error;
}

std::error_code document::insert(std::uint64_t position, std::string_view text) {
  ot::op_builder edit;
  edit.skip(position).insert(text);
  return submit(std::move(edit).finish());
}

std::error_code document::erase(std::uint64_t position, std::uint64_t count) {
  ot::op_builder edit;
  edit.skip(position).erase(count);
  return submit(std::move(edit).finish());
}

void document::on_change(std::function<void(const change&)> callback) {
  std::lock_guard lock(owner_->mutex);
  entry_->on_change = std::move(callback);
}

std::error_code document::set_selection(std::optional<ot::selection> range, std::string_view data) {
  client_core::outbox out;
  client_events events;
  std::error_code error;
  {
    std::lock_guard lock(owner_->mutex);
    error = owner_->core.set_selection(*entry_, range, data, out, events);
  }
  owner_->send(std::move(out));
  owner_->post_events(std::move(events));
  return error;
}

std::optional<ot::selection> document::selection() const {
  std::lock_guard lock(owner_->mutex);
  return entry_->presence ? entry_->presence->local : std::nullopt;
}

std::string document::presence_id() const {
  client_core::outbox out;
  std::string id;
  {
    std::lock_guard lock(owner_->mutex);
    id = owner_->core.enable_presence(*entry_, out).local_id;
  }
  owner_->send(std::move(out));
  return id;
}

void document::on_presence(std::function<void(const presence_change&)> callback) {
  client_core::outbox out;
  {
    std::lock_guard lock(owner_->mutex);
    owner_->core.enable_presence(*entry_, out).on_presence = std::move(callback);
  }
  owner_->send(std::move(out));
}

std::vector<remote_presence> document::remote_presences() const {
  std::lock_guard lock(owner_->mutex);
  return owner_->core.remote_presences(*entry_);
}

std::uint64_t document::presences_dropped() const {
  std::lock_guard lock(owner_->mutex);
  return entry_->presence ? entry_->presence->dropped : 0;
}

bool document::wait_loaded(std::chrono::milliseconds timeout) const {
  return owner_->wait(timeout, [this] { return entry_->loaded; });
}

bool document::wait_synchronised(std::chrono::milliseconds timeout) const {
  return owner_->wait(timeout, [this] { return is_synchronised(*entry_); });
}

}  // namespace otsync::client
