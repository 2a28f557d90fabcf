// The one place net/ includes Asio, so that every translation unit sees the
// same configuration (standalone Asio from libasio-dev, no Boost).
#pragma once

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#include <asio.hpp>
