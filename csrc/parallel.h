// Kept so existing includes still build: the scheduler now lives in thread_team.h (one team
// for every kernel family). New code includes thread_team.h directly.
#pragma once
#include "thread_team.h"
