// The socket type of client connections: the executor of the io_context that
// one I/O thread alone runs (server.cpp), concrete so handlers are not wrapped
// in the type-erased any_io_executor (a heap copy per operation). No strand:
// that thread already runs the connection's handlers one at a time, and a
// strand would add a lock and a queue to each.
#pragma once

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace otsync::server {

using connection_executor = boost::asio::io_context::executor_type;
using connection_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, connection_executor>;

}  // namespace otsync::server
