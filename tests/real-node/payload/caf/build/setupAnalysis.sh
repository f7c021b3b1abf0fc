# The analysis' environment: its commands on PATH.
export CAF_BUILD=/caf/build
export PATH="$CAF_BUILD/bin:$PATH"
