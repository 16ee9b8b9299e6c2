#!/bin/bash
exec psql -X -h /tmp/soak2/data -U postgres -d concert "$@"
