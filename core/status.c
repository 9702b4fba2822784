#include "status.h"

const char *sm_status_str(sm_status s)
{
    switch (s) {
    case SM_OK:            return "ok";
    case SM_ERR_INVALID:   return "invalid argument or input";
    case SM_ERR_NOMEM:     return "out of memory";
    case SM_ERR_FULL:      return "capacity full";
    case SM_ERR_NOT_FOUND: return "not found";
    case SM_ERR_DECODE:    return "decode error";
    case SM_ERR_CONFIG:    return "configuration error";
    case SM_ERR_STORE:     return "store error";
    case SM_ERR_MAP_FULL:  return "store map full";
    case SM_ERR_CORRUPT:   return "stored data corrupt";
    case SM_ERR_BUS:       return "bus error";
    case SM_ERR_IO:        return "i/o error";
    case SM_ERR_TIMEOUT:   return "timeout";
    case SM_ERR_VERSION:   return "newer format";
    }
    return "unknown";
}
