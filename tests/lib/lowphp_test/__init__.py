"""Test harness for lowphp-fpm: backends (lowphp-fpm / php-fpm8.2), nginx,
a raw FastCGI client, real database servers and a tiny runner. Standard
library only."""
from . import fcgi, http, site, util  # noqa: F401
from .backend import Backend, lowphp_bin, phpfpm_bin, run_cli, shut_down, write_ini, LOG_PREFIX, PHP_FPM_BIN  # noqa: F401
from .nginx import Nginx  # noqa: F401
from .servers import Postgres, MariaDB, Redis, RespClient, RedisError, ServerError  # noqa: F401
from .stack import Stack  # noqa: F401
from .scripted_pool import ScriptedPool  # noqa: F401
from . import compat  # noqa: F401
from . import fcgi_checks  # noqa: F401
from .runner import test, run, fail, check, check_eq, check_in, TestFailure  # noqa: F401
from .util import TempDir, free_port, wait_for  # noqa: F401
