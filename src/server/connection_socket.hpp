// The socket type of client connections: a concrete strand over the
// io_context's executor, so handlers are not wrapped in the type-erased
// any_io_executor (a heap copy per operation).
#pragma once

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

namespace otsync::server {

using connection_executor = boost::asio::strand<boost::asio::io_context::executor_type>;
using connection_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, connection_executor>;

}  // namespace otsync::server
