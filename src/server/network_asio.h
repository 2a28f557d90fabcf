// The one place statekv's server includes Asio, so that every translation unit
// sees the same configuration (standalone Asio from libasio-dev, no Boost).
#pragma once

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#include <asio.hpp>
