// bconv schedules: see popcount_conv.h (shared with bitserial_conv).
#pragma once
#include "popcount_conv.h"
