#include "push_connection.hpp"

#include <array>
#include <cstdlib>
#include <deque>

#include <hiredis/hiredis.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace otsync::redis {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct push_connection::state : std::enable_shared_from_this<push_connection::state> {
  state(asio::io_context& io, std::string h, std::uint16_t p, std::chrono::milliseconds timeout)
      : socket(io), resolver(io), timer(io), host(std::move(h)), port(p), connect_timeout(timeout) {}
  ~state() {
    if (reader) redisReaderFree(reader);
  }

  tcp::socket socket;
  tcp::resolver resolver;
  asio::steady_timer timer;
  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds connect_timeout;
  redisReader* reader = nullptr;
  bool connected = false;
  bool closed = false;   ///< disconnect() or lost: no more callbacks
  std::string outgoing;  ///< encoded commands not yet handed to a write
  bool writing = false;
  std::array<char, 16384> buffer{};
  push_connection* owner = nullptr;

  void fail() {
    if (closed) return;
    const bool was_connected = connected;
    closed = true;
    connected = false;
    boost::system::error_code ignored;
    socket.close(ignored);
    timer.cancel();
    if (was_connected && owner && owner->on_lost_) owner->on_lost_();
  }

  void write_more() {
    if (writing || outgoing.empty() || closed || !connected) return;
    writing = true;
    auto data = std::make_shared<std::string>(std::move(outgoing));
    outgoing.clear();
    asio::async_write(socket, asio::buffer(*data),
                      [self = shared_from_this(), data](boost::system::error_code ec, std::size_t) {
                        self->writing = false;
                        if (ec) return self->fail();
                        self->write_more();
                      });
  }

  void read_more() {
    socket.async_read_some(asio::buffer(buffer),
                           [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                             if (self->closed) return;
                             if (ec) return self->fail();
                             if (redisReaderFeed(self->reader, self->buffer.data(), n) != REDIS_OK) return self->fail();
                             while (!self->closed) {
                               void* reply = nullptr;
                               if (redisReaderGetReply(self->reader, &reply) != REDIS_OK) return self->fail();
                               if (!reply) break;
                               if (self->owner && self->owner->on_reply_)
                                 self->owner->on_reply_(static_cast<redisReply*>(reply));
                               freeReplyObject(reply);
                             }
                             if (!self->closed) self->read_more();
                           });
  }
};

push_connection::push_connection(asio::io_context& io, std::string host, std::uint16_t port,
                                 std::chrono::milliseconds connect_timeout)
    : state_(std::make_shared<state>(io, std::move(host), port, connect_timeout)) {
  state_->owner = this;
}

push_connection::~push_connection() {
  on_lost_ = nullptr;
  on_reply_ = nullptr;
  disconnect();
  state_->owner = nullptr;
}

bool push_connection::connected() const noexcept {
  return state_->connected;
}
const std::string& push_connection::host() const noexcept {
  return state_->host;
}
std::uint16_t push_connection::port() const noexcept {
  return state_->port;
}

void push_connection::connect(std::function<void(bool)> done) {
  auto& s = *state_;
  s.reader = s.reader ? s.reader : redisReaderCreate();
  auto finished = std::make_shared<bool>(false);
  auto finish = [self = state_, finished, done = std::move(done)](bool ok) {
    if (*finished) return;
    *finished = true;
    self->timer.cancel();
    if (!ok) {
      self->closed = true;
      boost::system::error_code ignored;
      self->socket.close(ignored);
    }
    done(ok);
  };
  s.timer.expires_after(s.connect_timeout);
  s.timer.async_wait([finish](boost::system::error_code ec) {
    if (!ec) finish(false);
  });
  s.resolver.async_resolve(
      s.host, std::to_string(s.port),
      [self = state_, finish](boost::system::error_code ec, const tcp::resolver::results_type& results) {
        if (ec || self->closed) return finish(false);
        asio::async_connect(self->socket, results,
                            [self, finish](boost::system::error_code connect_error, const tcp::endpoint&) {
                              if (connect_error || self->closed) return finish(false);
                              self->socket.set_option(tcp::no_delay(true));
                              self->connected = true;
                              finish(true);
                              self->write_more();
                              self->read_more();
                            });
      });
}

void push_connection::send(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* encoded = nullptr;
  const int n = redisFormatCommandArgv(&encoded, static_cast<int>(args.size()), args.data(), lengths.data());
  if (n < 0) return;
  state_->outgoing.append(encoded, static_cast<std::size_t>(n));
  std::free(encoded);
  state_->write_more();
}

void push_connection::disconnect() {
  auto& s = *state_;
  s.closed = true;
  s.connected = false;
  boost::system::error_code ignored;
  s.resolver.cancel();
  s.socket.close(ignored);
  s.timer.cancel();
}

}  // namespace otsync::redis
