// STUB, replaced by the lead's implementation: hiredis's async context driven
// by the Asio event loop. Only proves that the includes resolve.
#include <hiredis/async.h>

#include <boost/asio/io_context.hpp>
