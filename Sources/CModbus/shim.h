#include <modbus.h>
#include <errno.h>

/* errno is a macro: give Swift a function. */
static inline int cmodbus_errno(void) { return errno; }
