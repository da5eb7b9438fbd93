#include "otsync/server/server.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "context.hpp"
#include "listener.hpp"
#include "otsync/backend/open.hpp"
#include "otsync/server/log.hpp"
#include "otsync/server/presence_hub.hpp"
#include "static_site.hpp"
#include "tls.hpp"
#include "websocket_session.hpp"

namespace otsync::server {
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

// One io_context per I/O thread, each run by that thread alone. With a concurrency hint of 1, a
// handler that queues work for its own thread takes no lock and wakes no other thread; with one
// context shared by every thread, each such post woke another thread (a futex and an epoll_ctl).
class io_threads {
 public:
  explicit io_threads(unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
      contexts_.push_back(std::make_unique<context>());
      work_.push_back(asio::make_work_guard(*contexts_.back()));
    }
  }
  // Pending handlers (sessions, documents) of any context may post to another one as they are
  // destroyed: every context drops its handlers before any of them is destroyed.
  ~io_threads() { shutdown(); }
  io_threads(const io_threads&) = delete;
  io_threads& operator=(const io_threads&) = delete;

  /// The first context: the server's own timers and signals, and the listener.
  asio::io_context& primary() { return *contexts_.front(); }
  [[nodiscard]] std::vector<asio::io_context::executor_type> executors() const {
    std::vector<asio::io_context::executor_type> all;
    for (const auto& c : contexts_) all.push_back(c->get_executor());
    return all;
  }
  /// Runs the first context on the calling thread and each other one on a thread of its own, until stop().
  void run() {
    std::vector<std::thread> workers;
    for (std::size_t i = 1; i < contexts_.size(); ++i) workers.emplace_back([c = contexts_[i].get()] { c->run(); });
    contexts_.front()->run();
    for (auto& t : workers) t.join();
  }
  void stop() {
    work_.clear();
    for (auto& c : contexts_) c->stop();
  }
  /// Destroys every pending handler, and with them the sessions they hold. Handlers posted later
  /// (by those sessions, as they go) are destroyed with the contexts. Idempotent.
  void shutdown() {
    for (auto& c : contexts_) c->shutdown();
  }

 private:
  struct context : asio::io_context {
    context() : asio::io_context(1) {}
    using asio::execution_context::shutdown;
  };
  std::vector<std::unique_ptr<context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
};

}  // namespace

struct server::impl {
  explicit impl(server_options opts)
      : threads(opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency())),
        io(threads),
        signals(io.primary(), SIGINT, SIGTERM),
        reload_signal(io.primary()),
        drain_timer(io.primary()),
        sweep_timer(io.primary()),
        load_timer(io.primary()) {
    context.options = std::move(opts);
  }
  // The io_contexts destroy their pending handlers first, and with them the sessions still open
  // when the shutdown grace ran out: a session going unsubscribes and clears its presences through
  // the registry and the hub, so both still exist. The registry's documents (their timers) go next,
  // while the io_contexts live; the context, metrics and store go after the io_contexts.
  ~impl() {
    // Its threads call into the hub: stopped before anything they reach goes.
    if (presence_bus) presence_bus->stop();
    acceptor.reset();
    io.shutdown();
    documents.reset();
  }

  unsigned threads;
  server_context context;
  std::unique_ptr<store::store> storage;
  std::unique_ptr<pubsub::op_feed> feed;
  std::unique_ptr<metrics> stats;
  std::unique_ptr<pubsub::presence_bus> presence_bus;  // stopped first, destroyed after the hub that uses it
  std::optional<static_site> editor;
  std::unique_ptr<presence_hub> presence;  // after stats (it reports to them); outlives the documents
  std::shared_ptr<const auth::identity_keys> identity;
  std::optional<auth::jwt_verifier> verifier;
  std::unique_ptr<doc::registry> documents;
  std::shared_ptr<listener> acceptor;
  std::unique_ptr<tls_server_config> tls;
  io_threads io;
  asio::signal_set signals;
  asio::signal_set reload_signal;  // SIGHUP with --tls-cert: re-read the certificate
  asio::steady_timer drain_timer;
  asio::steady_timer sweep_timer;  // WebSocket idle and close-handshake timeouts
  asio::steady_timer load_timer;   // samples the CPU use that sets the broadcast hold
  clock::time_point load_sampled_at;
  std::int64_t load_cpu_ns = 0;
  unsigned samples_until_store_check = 10;  // the first check a second in: connecting takes a moment
  std::optional<bool> store_was_up;         // last logged: whether the shared store and the feed answer
  std::atomic<bool> stopping{false};
  clock::time_point drain_started;
  clock::time_point cut_off_at;
  int exit_status = 0;

  void sweep_sessions();
  void sample_load();
  void watch_store();
  void await_reload();
  void begin_drain();
  void wait_for_commits();
  std::vector<std::shared_ptr<websocket_session>> open_sessions();
  bool sessions_open();
  void close_sessions();
  void wait_for_sessions();
  void wait_for_cut_off();
  void wait_for_unsubscribes();
  void finish();
};

server::server(server_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

server::~server() = default;

namespace {

std::optional<asio::ip::tcp::endpoint> parse_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port > 65535) return std::nullopt;
  } catch (...) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return std::nullopt;
  return asio::ip::tcp::endpoint(address, static_cast<std::uint16_t>(port));
}

// Tags this process's published ops, so its own op feed skips them.
std::string random_instance_id() {
  std::random_device entropy;
  std::string id;
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", entropy());
    id += part;
  }
  return id;
}

// The identity secret: the file named, else DATA_DIR/identity-secret (made on
// first start, readable by the owner only), else (memory:, nothing to keep) a
// random one. Trailing whitespace is not part of it. Empty on success.
std::string load_identity_secret(const server_options& opts, std::string& secret) {
  namespace fs = std::filesystem;
  auto read = [&secret](const fs::path& path) -> std::string {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "cannot read the identity secret file " + path.string();
    secret.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) secret.pop_back();
    if (secret.size() < auth::min_identity_secret_bytes) {
      return "the identity secret in " + path.string() + " is shorter than 16 bytes";
    }
    return {};
  };
  if (!opts.identity_secret_file.empty()) return read(opts.identity_secret_file);
  if (opts.store.starts_with("memory:")) {
    secret = auth::identity_keys::random_secret();
    return {};
  }
  std::error_code ec;
  fs::create_directories(opts.data_dir, ec);
  const fs::path path = fs::path(opts.data_dir) / "identity-secret";
  if (!fs::exists(path, ec)) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    for (char c : auth::identity_keys::random_secret()) {
      const auto byte = static_cast<unsigned char>(c);
      text.push_back(hex[byte >> 4]);
      text.push_back(hex[byte & 15]);
    }
    const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
    {
      // Readable by the owner only from the start, and never through a file someone else made.
      text.push_back('\n');
      const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      const bool written = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
      if (fd >= 0) ::close(fd);
      if (!written) {
        fs::remove(tmp, ec);
        return "cannot write the identity secret file " + tmp.string();
      }
    }
    // Instances sharing the directory (compose) may race here: a hard link is made only if no
    // file has the name yet, so every one of them reads the first secret written.
    fs::create_hard_link(tmp, path, ec);
    fs::remove(tmp, ec);
  }
  return read(path);
}

// A secret file's content without trailing whitespace; empty and `error` set when unreadable.
std::string read_secret_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return {};
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.empty()) error = path + " is empty";
  return text;
}

// --auth jwt: the verifier, or why the settings make none. Empty on success.
std::string make_verifier(const server_options& opts, std::optional<auth::jwt_verifier>& verifier) {
  auth::jwt_settings settings;
  if (!opts.jwt_secret_file.empty()) {
    std::string error;
    settings.hs256_secret = read_secret_file(opts.jwt_secret_file, error);
    if (!error.empty()) return "--jwt-secret-file: " + error;
  }
  settings.public_keys_file = opts.jwt_public_keys;
  settings.issuer = opts.jwt_issuer;
  settings.audience = opts.jwt_audience;
  settings.clock_skew = std::chrono::seconds(opts.jwt_clock_skew_s);
  settings.permissions_claim = opts.jwt_permissions_claim;
  auto made = auth::jwt_verifier::create(settings);
  if (auto* error = std::get_if<std::string>(&made)) return "--auth jwt: " + *error;
  verifier.emplace(std::move(std::get<auth::jwt_verifier>(made)));
  return {};
}

bool write_port_file(const std::string& path, std::uint16_t port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << port << '\n';
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

std::string server::start() {
  auto& s = *impl_;
  auto& opts = s.context.options;
  auto endpoint = parse_listen(opts.listen);
  if (!endpoint) return "invalid --listen address '" + opts.listen + "' (expected HOST:PORT)";
  // One op is broadcast as one frame, and its text can take six times its bytes in JSON (control
  // characters are escaped as \u00XX): a queue that cannot hold it would close every subscriber.
  const std::size_t largest_broadcast = 6 * opts.message_limits.max_op_bytes + 64 * 1024;
  if (opts.max_send_queue_bytes < largest_broadcast) {
    return "--max-send-queue-bytes " + std::to_string(opts.max_send_queue_bytes) + " cannot hold the broadcast of " +
           "the largest op --max-op-bytes " + std::to_string(opts.message_limits.max_op_bytes) + " allows (up to " +
           std::to_string(largest_broadcast) + " bytes of JSON): raise it, or lower --max-op-bytes";
  }

  if (opts.redis_min_replicas > 0 && opts.redis_wait_timeout >= opts.redis_timeout) {
    return "--redis-wait-timeout-ms must be shorter than --redis-timeout-ms (a WAIT is a command on the store's "
           "connection)";
  }
  if (opts.tls_cert.empty() && (!opts.tls_key.empty() || !opts.tls_client_ca.empty())) {
    return std::string(opts.tls_key.empty() ? "--tls-client-ca" : "--tls-key") + " needs --tls-cert";
  }
  if (!opts.tls_cert.empty()) {
    std::string error;
    s.tls = tls_server_config::load(opts, error);
    if (!s.tls) return error;
    s.context.tls = s.tls.get();
    if (s.tls->not_after() < std::chrono::system_clock::now()) {
      log::warn("tls_certificate_expired", {{"cert", opts.tls_cert}});
    }
  }
  if (opts.auth == "jwt") {
    if (auto error = make_verifier(opts, s.verifier); !error.empty()) return error;
    s.context.verifier = &*s.verifier;
  } else if (!endpoint->address().is_loopback()) {
    log::warn("no_authentication",
              {{"message", "listening on " + opts.listen +
                               " with --auth none: anyone who can reach it may read and write every document "
                               "(docs/security.md)"}});
  }
  if (!opts.metrics_token_file.empty()) {
    std::string error;
    s.context.metrics_token = read_secret_file(opts.metrics_token_file, error);
    if (!error.empty()) return "--metrics-token-file: " + error;
  }
  if (!opts.editor_token_url.empty() && !opts.editor_token_url.starts_with("https://") &&
      !opts.editor_token_url.starts_with("http://") &&
      !(opts.editor_token_url.starts_with('/') && !opts.editor_token_url.starts_with("//"))) {
    return "--editor-token-url must be an http(s):// URL or a path on this origin (/...), not '" +
           opts.editor_token_url + "'";
  }
  if (!opts.no_editor) {
    const auto dir = opts.editor_dir.empty() ? default_editor_dir() : opts.editor_dir;
    std::string error;
    s.editor = static_site::load(dir, error);
    if (s.editor) {
      s.context.editor = &*s.editor;
      log::info("editor", {{"dir", s.editor->dir()}, {"files", std::to_string(s.editor->size())}});
    } else {
      s.context.editor_unavailable = "The editor page is not available: " + error +
                                     " (build it: scripts/run.sh, or npm ci && npm run build in clients/editor, then "
                                     "the CMake build; or point --editor-dir at clients/editor/dist)";
      log::warn("editor_unavailable", {{"message", s.context.editor_unavailable}});
    }
  }
  std::string secret;
  if (auto error = load_identity_secret(opts, secret); !error.empty()) return error;
  s.identity = std::make_shared<const auth::identity_keys>(std::move(secret));
  s.context.identity = s.identity.get();
  opts.documents.public_src = [identity = s.identity](std::string_view src) { return identity->alias(src); };
  if (opts.identity_secret_file.empty() && opts.store.starts_with("redis")) {
    log::warn("identity_secret", {{"message",
                                   "no --identity-secret-file: instances sharing this store must share one, or a "
                                   "client that reconnects to another instance loses its id (docs/security.md)"}});
  }

  backend::backend_options backend_options;
  backend_options.data_dir = opts.data_dir;
  backend_options.sqlite = opts.sqlite;
  backend_options.redis_prefix = opts.redis_prefix;
  backend_options.redis_timeout = opts.redis_timeout;
  backend_options.instance_id = random_instance_id();
  backend_options.presence.lease = opts.presence_lease;
  backend_options.redis_min_replicas = opts.redis_min_replicas;
  backend_options.redis_wait_timeout = opts.redis_wait_timeout;
  backend_options.presence.max_queue = opts.max_presence_relay_queue;
  std::string message;
  auto opened = backend::open_backend(opts.store, backend_options, &message);
  if (!opened) return message;
  s.storage = std::move(opened->store);
  s.feed = std::move(opened->feed);
  s.presence_bus = std::move(opened->presence);
  s.stats = std::make_unique<metrics>();
  if (s.tls) {
    s.stats->enable_tls();
    s.stats->set_tls_not_after(static_cast<double>(std::chrono::system_clock::to_time_t(s.tls->not_after())));
  }
  s.documents = std::make_unique<doc::registry>(s.io.primary().get_executor(), *s.storage, opts.documents,
                                                s.stats.get(), s.feed.get());
  s.documents->place_on(s.io.executors());
  presence_hub::options hub;
  hub.observer = s.stats.get();
  hub.bus = s.presence_bus.get();
  hub.max_remote_presences = opts.max_remote_presences;
  hub.max_channels = opts.max_server_presence_channels;
  // Timers on the server's io_context: it goes before the hub, so none fires on a hub that is gone.
  hub.post_after = [io = &s.io.primary()](std::chrono::milliseconds delay, std::function<void()> fn) {
    auto timer = std::make_shared<asio::steady_timer>(*io, delay);
    timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
      if (!ec) fn();
    });
  };
  hub.move = [documents = s.documents.get()](const store::doc_key& key, std::uint64_t version, std::string src,
                                             std::optional<ot::selection> range, doc::presence_handler done) {
    documents->transform_presence(key, version, std::move(src), range, std::move(done));
  };
  s.presence = std::make_unique<presence_hub>(std::move(hub));
  s.presence->start();
  s.context.presence = s.presence.get();
  s.context.feed = s.feed.get();
  s.context.presence_bus = s.presence_bus.get();
  s.context.storage = s.storage.get();
  s.context.documents = s.documents.get();
  s.context.service = s.documents.get();
  s.context.stats = s.stats.get();

  s.acceptor = std::make_shared<listener>(s.io.primary().get_executor(), s.io.executors(), s.context);
  if (auto ec = s.acceptor->open(*endpoint)) return "cannot listen on " + opts.listen + ": " + ec.message();
  if (!opts.port_file.empty() && !write_port_file(opts.port_file, port())) {
    return "cannot write --port-file " + opts.port_file;
  }
  return {};
}

std::uint16_t server::port() const {
  return impl_->acceptor->local_endpoint().port();
}

int server::run() {
  auto& s = *impl_;
  s.signals.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    log::info("signal", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
    request_stop();
  });
  if (s.tls) {
    s.reload_signal.add(SIGHUP);
    s.await_reload();
  }
  s.acceptor->start();
  s.sweep_sessions();
  s.sample_load();
  s.documents->start_eviction(s.context.options.idle_eviction,
                              std::max(std::chrono::milliseconds(100), s.context.options.idle_eviction / 4));
  s.context.ready = true;
  log::info("listening",
            {{"address", s.acceptor->local_endpoint().address().to_string() + ":" + std::to_string(port())},
             {"store", s.context.options.store},
             {"tls", s.tls ? "on" : "off"},
             {"threads", std::to_string(s.threads)}});
  s.io.run();
  return s.exit_status;
}

void server::request_stop() {
  asio::post(impl_->io.primary(), [this] {
    if (impl_->stopping.exchange(true)) return;
    impl_->begin_drain();
  });
}

// SIGHUP: new connections get the certificate in the files now; open ones keep theirs. Reading
// two small files on an I/O thread is short; a failure keeps the current certificate.
void server::impl::await_reload() {
  reload_signal.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    auto error = tls->reload();
    stats->tls_reloaded(error.empty());
    if (error.empty()) {
      const auto not_after = std::chrono::system_clock::to_time_t(tls->not_after());
      stats->set_tls_not_after(static_cast<double>(not_after));
      log::info("tls_reloaded", {{"cert", context.options.tls_cert}, {"not_after", std::to_string(not_after)}});
    } else {
      log::error("tls_reload_failed", {{"error", error}, {"message", "the previous certificate stays in use"}});
    }
    await_reload();
  });
}

// One timer for every connection's timeouts (a timer per connection would cost
// memory and a pending wait each); the precision needed is seconds.
void server::impl::sweep_sessions() {
  auto now = clock::now();
  std::vector<std::shared_ptr<websocket_session>> open;
  {
    std::lock_guard lock(context.sessions_mutex);
    open.reserve(context.sessions.size());
    for (auto& [ptr, weak] : context.sessions) {
      if (auto session = weak.lock()) open.push_back(std::move(session));
    }
  }
  for (auto& session : open) session->check_timeouts(now);
  // A tenth of the idle timeout and a quarter of the message timeout (5 s at most), so a ping, a
  // drop or a timed-out message is at most that late.
  auto period = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(context.options.ws_idle_timeout / 10),
                         context.options.message_timeout / 4);
  // With tokens, a connection whose token expired is closed within a second.
  const auto longest = context.verifier ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(5000);
  sweep_timer.expires_after(std::clamp(period, std::chrono::milliseconds(20), longest));
  sweep_timer.async_wait([this](boost::system::error_code ec) {
    if (!ec) sweep_sessions();
  });
}

namespace {
std::int64_t process_cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// The CPUs this process may use: its affinity, and a cgroup v2 quota ("max 100000" or
// "200000 100000" in cpu.max) such as a container's CPU limit; at least 1.
double usable_cpus() {
  double cpus = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::min(cpus, static_cast<double>(CPU_COUNT(&set)));
  std::ifstream quota_file("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (quota_file >> quota >> period && quota != "max" && period > 0) {
    try {
      cpus = std::min(cpus, std::stod(quota) / period);
    } catch (const std::exception&) {
      // Unreadable: the affinity stands.
    }
  }
  return std::max(cpus, 1.0);
}
}  // namespace

// --broadcast-coalesce-us on a busy server only: every 100 ms, the process's CPU use (as a share of
// its I/O threads) sets how long streaming connections hold broadcasts to write them together.
void server::impl::sample_load() {
  const auto now = clock::now();
  const auto cpu = process_cpu_ns();
  const auto& o = context.options;
  if (o.broadcast_coalesce.count() > 0) {
    // 0 below the threshold, all of it at twice the threshold, in proportion between.
    double share = 1.0;
    if (o.broadcast_coalesce_load > 0) {
      // As a share of the I/O threads, or of the CPUs the process may use if fewer.
      static const double usable = usable_cpus();
      const double wall = std::chrono::duration<double, std::nano>(now - load_sampled_at).count() *
                          std::min(static_cast<double>(threads), usable);
      const double used =
          load_sampled_at != clock::time_point{} && wall > 0 ? static_cast<double>(cpu - load_cpu_ns) / wall : 0.0;
      share = std::clamp((used - o.broadcast_coalesce_load) / o.broadcast_coalesce_load, 0.0, 1.0);
    }
    const auto hold = std::chrono::duration_cast<clock::duration>(o.broadcast_coalesce * share);
    context.broadcast_hold.store(hold.count(), std::memory_order_relaxed);
    if (stats) stats->set_broadcast_hold(std::chrono::duration<double>(hold).count());
  }
  load_sampled_at = now;
  load_cpu_ns = cpu;
  if (samples_until_store_check-- == 0) {
    samples_until_store_check = 9;  // once a second
    watch_store();
  }
  // Not re-armed once stopping: finish() never touches this timer.
  if (stopping) return;
  load_timer.expires_after(std::chrono::milliseconds(100));
  load_timer.async_wait([this](boost::system::error_code ec) {
    if (!ec) sample_load();
  });
}

// The log says when the store (or the op feed) stops answering and when it is back, with why, as
// far as it knows: /readyz only says 503.
void server::impl::watch_store() {
  const auto store = context.storage->health();
  const auto feed_health = context.feed ? std::optional(context.feed->health()) : std::nullopt;
  const bool up = store.connected && (!feed_health || feed_health->connected);
  if (store_was_up == up) return;
  const bool first = !store_was_up.has_value();
  store_was_up = up;
  if (up) {
    if (!first) log::info("store_available", {{"store", store.detail}});
    return;
  }
  log::warn("store_unavailable",
            {{"store", store.detail},
             {"feed", feed_health ? (feed_health->connected ? "connected" : "unreachable") : "none"},
             {"message", "not ready (/readyz 503) until it answers again"}});
}

void server::impl::begin_drain() {
  log::info("draining", {});
  context.draining = true;
  context.ready = false;
  boost::system::error_code ignored;
  signals.cancel(ignored);
  reload_signal.cancel(ignored);
  documents->stop_eviction();
  // New WebSocket upgrades are refused from now on; the listener stays open
  // a moment so that health checks see /readyz turn 503.
  drain_timer.expires_after(context.options.drain_delay);
  drain_timer.async_wait([this](boost::system::error_code) {
    acceptor->stop();
    drain_started = clock::now();
    wait_for_commits();
  });
}

void server::impl::wait_for_commits() {
  if (!documents->quiescent() && clock::now() - drain_started < context.options.shutdown_grace) {
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait([this](boost::system::error_code) { wait_for_commits(); });
    return;
  }
  close_sessions();
}

bool server::impl::sessions_open() {
  std::lock_guard lock(context.sessions_mutex);
  return std::any_of(context.sessions.begin(), context.sessions.end(),
                     [](const auto& session) { return !session.second.expired(); });
}

std::vector<std::shared_ptr<websocket_session>> server::impl::open_sessions() {
  std::vector<std::shared_ptr<websocket_session>> open;
  std::lock_guard lock(context.sessions_mutex);
  for (auto& [ptr, weak] : context.sessions) {
    if (auto session = weak.lock()) open.push_back(std::move(session));
  }
  return open;
}

void server::impl::close_sessions() {
  auto open = open_sessions();
  log::info("closing_connections", {{"count", std::to_string(open.size())}});
  for (auto& session : open) session->going_away();
  wait_for_sessions();
}

void server::impl::wait_for_sessions() {
  const bool empty = !sessions_open();
  if (!empty && clock::now() - drain_started < context.options.shutdown_grace + std::chrono::seconds(2)) {
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait([this](boost::system::error_code) { wait_for_sessions(); });
    return;
  }
  if (!empty) {
    // Clients that never answered the close: cut off while the I/O threads still run, so that their
    // unsubscribes reach the documents (a document and a subscription it holds keep each other alive).
    auto open = open_sessions();
    log::info("cutting_off_connections", {{"count", std::to_string(open.size())}});
    for (auto& session : open) session->cut_off();
    cut_off_at = clock::now();
    wait_for_cut_off();
    return;
  }
  wait_for_unsubscribes();
}

void server::impl::wait_for_cut_off() {
  // Until every session has finished (bounded: a thread stuck in a long handler does not hold the
  // exit for good).
  const bool empty = !sessions_open();
  if (!empty && clock::now() - cut_off_at < std::chrono::seconds(1)) {
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait([this](boost::system::error_code) { wait_for_cut_off(); });
    return;
  }
  wait_for_unsubscribes();
}

void server::impl::wait_for_unsubscribes() {
  // The closed sessions' unsubscribes are posted to their documents' executors: let them run before
  // the io_contexts stop, or a document and the subscription it still holds keep each other alive.
  drain_timer.expires_after(std::chrono::milliseconds(50));
  drain_timer.async_wait([this](boost::system::error_code) { finish(); });
}

void server::impl::finish() {
  sweep_timer.cancel();
  // A goodbye: the other instances clear what this one's connections showed at once.
  if (presence_bus) presence_bus->stop();
  storage->close();
  log::info("stopped", {});
  io.stop();
}

}  // namespace otsync::server
