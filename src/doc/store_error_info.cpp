#include "otsync/doc/store_error_info.hpp"

#include "otsync/protocol/errors.hpp"

namespace otsync::doc {

protocol::error_info store_error_info(std::error_code error) { return protocol::to_error_info(error); }

}  // namespace otsync::doc
