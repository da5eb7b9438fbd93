#include "run.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "proc_stats.hpp"
#include "run_state.hpp"
#include "session.hpp"

namespace otsync::load {
namespace {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// One I/O thread and the connections it drives.
struct io_thread {
  asio::io_context context{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{context.get_executor()};
  std::thread thread;
  thread_stats stats;
  std::vector<session*> pending_connects;
  std::size_t next = 0;
  std::size_t in_flight = 0;
  unsigned concurrency = 256;

  // On the thread: start connections until `concurrency` are under way.
  void launch() {
    while (in_flight < concurrency && next < pending_connects.size()) {
      ++in_flight;
      pending_connects[next++]->connect();
    }
  }
};

class progress {
 public:
  explicit progress(bool quiet) : quiet_(quiet) {}
  template <typename... Args>
  void line(const char* format, Args... args) const {
    if (quiet_) return;
    std::fprintf(stderr, "otsync-load: ");
    std::fprintf(stderr, format, args...);
    std::fputc('\n', stderr);
  }

 private:
  bool quiet_;
};

std::string random_id() {
  std::random_device rd;
  std::uint64_t x = (std::uint64_t{rd()} << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return std::string(buf, 10);
}

const char* role_name(role r) {
  switch (r) {
    case role::writer:
      return "writer";
    case role::reader:
      return "reader";
    case role::idle:
      return "idle";
    case role::checker:
      return "checker";
  }
  return "?";
}

std::string preview(const std::string& text) {
  if (text.size() <= 40) return text;
  return text.substr(0, 40) + "...(" + std::to_string(text.size()) + " bytes)";
}

double seconds_since(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
}

}  // namespace

int run_load(const options& opts, run_result& out) {
  progress say(opts.quiet);
  std::vector<target> targets;
  const tls_options tls{opts.tls_ca_file, opts.tls_insecure_skip_verify};
  for (const auto& url : opts.urls) targets.push_back(resolve_target(url, tls));

  out.run_id = random_id();
  run_state state;
  std::vector<std::unique_ptr<io_thread>> threads;
  for (unsigned i = 0; i < opts.threads; ++i) {
    threads.push_back(std::make_unique<io_thread>());
    threads.back()->concurrency = opts.connect_concurrency;
  }

  // The plan: per document its writers (the first creates it) and readers;
  // idle connections spread over the documents.
  struct planned {
    role kind;
    std::uint32_t doc;
  };
  std::vector<planned> plan;
  std::vector<std::uint32_t> per_doc(opts.docs, 0);
  for (std::uint32_t d = 0; d < opts.docs; ++d) {
    for (std::uint32_t w = 0; w < opts.writers; ++w) plan.push_back({role::writer, d});
    for (std::uint32_t r = 0; r < opts.readers; ++r) plan.push_back({role::reader, d});
    per_doc[d] += opts.writers + opts.readers;
  }
  for (std::uint32_t c = 0; c < opts.connections; ++c) {
    plan.push_back({role::idle, c % opts.docs});
    ++per_doc[c % opts.docs];
  }
  auto doc_name = [&](std::uint32_t d) { return opts.preset + "-" + out.run_id + "-" + std::to_string(d); };

  std::atomic<std::size_t> connected{0};
  std::vector<std::unique_ptr<session>> sessions;
  sessions.reserve(plan.size());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    auto& thread = *threads[i % threads.size()];
    session_config config;
    config.kind = plan[i].kind;
    config.index = static_cast<std::uint32_t>(i);
    config.server = &targets[i % targets.size()];
    config.collection = opts.collection;
    config.doc_id = doc_name(plan[i].doc);
    config.creator =
        plan[i].kind == role::writer && (i == 0 || plan[i - 1].doc != plan[i].doc || plan[i - 1].kind != role::writer);
    config.receivers = per_doc[plan[i].doc] - 1;
    config.rate = opts.rate;
    config.rate_jitter = opts.rate_jitter;
    config.max_doc_chars = opts.max_doc_chars;
    config.seed = opts.seed;
    io_thread* owner = &thread;
    sessions.push_back(
        std::make_unique<session>(thread.context, std::move(config), state, thread.stats, [owner, &connected] {
          --owner->in_flight;
          connected.fetch_add(1, std::memory_order_acq_rel);
          owner->launch();
        }));
    thread.pending_connects.push_back(sessions.back().get());
  }
  out.connections = sessions.size();

  for (int pid : opts.pids) {
    server_sample s;
    s.pid = pid;
    s.rss_before = process_rss_bytes(pid);
    if (!process_cpu_seconds(pid)) std::fprintf(stderr, "otsync-load: warning: cannot read /proc/%d/stat\n", pid);
    out.servers.push_back(s);
  }

  for (auto& t : threads) {
    io_thread* raw = t.get();
    t->thread = std::thread([raw] { raw->context.run(); });
    asio::post(raw->context, [raw] { raw->launch(); });
  }
  auto post_all = [&](auto fn) {
    for (auto& s : sessions) {
      session* raw = s.get();
      // Sessions are spread over threads by index, as planned.
      asio::post(threads[raw->config().index % threads.size()]->context, [raw, fn] { fn(*raw); });
    }
  };
  auto shutdown = [&](std::vector<std::unique_ptr<session>>& extra) {
    for (auto* list : {&sessions, &extra}) {
      for (std::size_t i = 0; i < list->size(); ++i) {
        session* raw = (*list)[i].get();
        asio::post(threads[i % threads.size()]->context, [raw] { raw->close(); });
      }
    }
    std::this_thread::sleep_for(100ms);
    for (auto& t : threads) {
      t->guard.reset();
      t->context.stop();
    }
    for (auto& t : threads) t->thread.join();
  };

  // --- Connect.
  std::vector<std::unique_ptr<session>> checkers;
  auto start = clock::now();
  auto deadline = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.timeout_s));
  auto next_line = start;
  while (connected.load(std::memory_order_acquire) < sessions.size() && clock::now() < deadline) {
    if (clock::now() >= next_line) {
      say.line("connecting %zu/%zu", connected.load(), sessions.size());
      next_line += 1s;
    }
    std::this_thread::sleep_for(10ms);
  }
  std::size_t ready = 0;
  const session* first_failure = nullptr;
  for (auto& s : sessions) {
    if (s->status() == session_status::ready)
      ++ready;
    else if (s->status() == session_status::failed && first_failure == nullptr)
      first_failure = s.get();
  }
  if (ready < sessions.size()) {
    std::size_t done = connected.load(std::memory_order_acquire);
    shutdown(checkers);
    if (first_failure != nullptr) {
      std::fprintf(stderr, "otsync-load: connecting failed (%zu/%zu ready): %s\n", ready, sessions.size(),
                   first_failure->failure().c_str());
    } else {
      std::fprintf(stderr, "otsync-load: connecting timed out after %.1f s (%zu/%zu ready, %zu answered)\n",
                   opts.timeout_s, ready, sessions.size(), done);
    }
    return 1;
  }
  say.line("connected %zu connections in %.2f s", sessions.size(), seconds_since(start));
  for (auto& s : out.servers) s.rss_connected = process_rss_bytes(s.pid);
  for (auto& s : sessions)
    if (s->config().kind == role::writer) state.writer_index.emplace(s->shown_src(), s->config().index);

  // --- Warmup, then the measured window.
  state.current.store(phase::running, std::memory_order_release);
  post_all([](session& s) { s.start_writing(); });
  if (opts.warmup_s > 0) {
    say.line("warmup %.1f s", opts.warmup_s);
    std::this_thread::sleep_for(std::chrono::duration<double>(opts.warmup_s));
  }
  auto acks_now = [&] {
    std::uint64_t n = 0;
    for (auto& t : threads) n += t->stats.acks.load(std::memory_order_relaxed);
    return n;
  };
  std::vector<std::optional<cpu_seconds>> cpu_before;
  for (auto& s : out.servers) cpu_before.push_back(process_cpu_seconds(s.pid));
  double self_before = self_cpu_seconds();
  auto window_start = clock::now();
  state.window_start_ns.store(now_ns(), std::memory_order_relaxed);
  state.current.store(phase::measuring, std::memory_order_release);
  say.line("measuring %.1f s", opts.duration_s);
  auto window_end =
      window_start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.duration_s));
  std::uint64_t acks_at_start = acks_now();
  while (clock::now() < window_end) {
    auto step = std::min<clock::duration>(window_end - clock::now(), 1s);
    std::this_thread::sleep_for(step);
    if (clock::now() < window_end)
      say.line("  %.0f s: %llu acks", seconds_since(window_start),
               static_cast<unsigned long long>(acks_now() - acks_at_start));
  }
  state.current.store(phase::settling, std::memory_order_release);
  out.window_s = seconds_since(window_start);
  double self_after = self_cpu_seconds();
  for (std::size_t i = 0; i < out.servers.size(); ++i) {
    auto after = process_cpu_seconds(out.servers[i].pid);
    if (after && cpu_before[i]) {
      out.servers[i].cpu_percent = (after->total() - cpu_before[i]->total()) / out.window_s * 100.0;
      out.servers[i].kernel_cpu_percent = (after->system - cpu_before[i]->system) / out.window_s * 100.0;
    }
  }
  out.loadgen_cpu_percent = (self_after - self_before) / out.window_s * 100.0;
  out.loadgen_saturated = out.loadgen_cpu_percent >= 90.0 * opts.threads;
  if (out.loadgen_saturated) {
    std::fprintf(stderr,
                 "otsync-load: warning: the load generator used %.0f%% CPU with %u thread(s): it may be the "
                 "bottleneck (add --threads)\n",
                 out.loadgen_cpu_percent, opts.threads);
  }

  // --- Settle: no new edits; wait until nothing is in flight and every document's clients agree.
  post_all([](session& s) { s.stop_writing(); });
  say.line("settling");
  auto settle_start = clock::now();
  auto settle_deadline =
      settle_start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.timeout_s));
  std::string settle_problem;
  while (true) {
    settle_problem.clear();
    std::vector<std::optional<std::uint64_t>> versions(opts.docs);
    for (std::size_t i = 0; i < sessions.size() && settle_problem.empty(); ++i) {
      auto& s = *sessions[i];
      if (s.status() != session_status::ready) continue;
      if (!s.settled()) {
        settle_problem = "client #" + std::to_string(i) + " still has ops in flight or a fetch under way";
        break;
      }
      auto& v = versions[plan[i].doc];
      if (!v)
        v = s.version();
      else if (*v != s.version())
        settle_problem = "clients of " + doc_name(plan[i].doc) + " at versions " + std::to_string(*v) + " and " +
                         std::to_string(s.version());
    }
    if (settle_problem.empty() || clock::now() >= settle_deadline) break;
    std::this_thread::sleep_for(5ms);
  }
  if (!settle_problem.empty()) say.line("did not settle within %.1f s: %s", opts.timeout_s, settle_problem.c_str());

  // --- Check: a fresh connection fetches each document.
  state.current.store(phase::checking, std::memory_order_release);
  say.line("checking %u document(s)", opts.docs);
  std::atomic<std::size_t> checked{0};
  for (std::uint32_t d = 0; d < opts.docs; ++d) {
    std::size_t i = d;
    auto& thread = *threads[i % threads.size()];
    session_config config;
    config.kind = role::checker;
    config.index = static_cast<std::uint32_t>(sessions.size() + d);
    config.server = &targets[d % targets.size()];
    config.collection = opts.collection;
    config.doc_id = doc_name(d);
    io_thread* owner = &thread;
    checkers.push_back(
        std::make_unique<session>(thread.context, std::move(config), state, thread.stats, [owner, &checked] {
          --owner->in_flight;
          checked.fetch_add(1, std::memory_order_acq_rel);
          owner->launch();
        }));
  }
  for (std::size_t i = 0; i < checkers.size(); ++i) {
    auto* owner = threads[i % threads.size()].get();
    session* raw = checkers[i].get();
    asio::post(owner->context, [owner, raw] {
      owner->pending_connects.push_back(raw);
      owner->launch();
    });
  }
  auto check_deadline =
      clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(opts.timeout_s));
  while (checked.load(std::memory_order_acquire) < checkers.size() && clock::now() < check_deadline)
    std::this_thread::sleep_for(5ms);
  for (auto& s : out.servers) s.rss_bytes = process_rss_bytes(s.pid);
  if (out.connections > 0) {
    std::uint64_t before = 0;
    std::uint64_t after = 0;
    bool known = !out.servers.empty();
    for (auto& s : out.servers) {
      known = known && s.rss_before && s.rss_connected;
      if (known) {
        before += *s.rss_before;
        after += *s.rss_connected;
      }
    }
    if (known && opts.connections > 0)
      out.rss_per_connection =
          (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(out.connections);
  }

  shutdown(checkers);
  state.current.store(phase::stopped, std::memory_order_release);

  for (auto& t : threads) {
    out.ack_latency.merge(t->stats.ack_latency);
    out.delivery_latency.merge(t->stats.delivery_latency);
    out.window_acks += t->stats.window_acks;
    out.window_deliveries += t->stats.window_deliveries;
    out.total_acks += t->stats.acks.load();
    out.disconnects += t->stats.disconnects.load();
    for (const auto& [code, n] : t->stats.errors) out.errors[code] += n;
  }

  // --- Convergence: every connected client's text and version equal the server's.
  out.converged = settle_problem.empty();
  out.mismatch = settle_problem;
  for (std::uint32_t d = 0; d < opts.docs && out.converged; ++d) {
    const auto& checker = *checkers[d];
    if (checker.status() != session_status::ready && checker.status() != session_status::closed) {
      out.converged = false;
      out.mismatch = "fetching " + doc_name(d) +
                     " failed: " + (checker.failure().empty() ? std::string("no reply in time") : checker.failure());
      break;
    }
    const snapshot& server = checker.checked();
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      if (plan[i].doc != d) continue;
      const auto& s = *sessions[i];
      if (s.status() == session_status::failed || s.status() == session_status::disconnected) continue;
      const auto* replica = s.replica();
      std::string who = "client #" + std::to_string(i) + " (" + role_name(plan[i].kind) + ") of " + doc_name(d);
      if (!server.has_type) {
        if (replica != nullptr) {
          out.converged = false;
          out.mismatch = who + " has the document at v" + std::to_string(replica->version()) +
                         " but the server has none (v" + std::to_string(server.v) + ")";
        }
      } else if (replica == nullptr) {
        out.converged = false;
        out.mismatch = who + " never saw the document the server has at v" + std::to_string(server.v);
      } else {
        std::string text = replica->text().to_string();
        if (replica->version() != server.v || text != server.data) {
          out.converged = false;
          out.mismatch = who + ": v" + std::to_string(replica->version()) + " \"" + preview(text) + "\", server v" +
                         std::to_string(server.v) + " \"" + preview(server.data) + "\"";
        }
      }
      if (!out.converged) break;
    }
  }
  say.line("done: %llu acked ops in %.2f s, converged: %s", static_cast<unsigned long long>(out.window_acks),
           out.window_s, out.converged ? "true" : "false");
  return 0;
}

}  // namespace otsync::load
