-- GET /readyz (or the path given) as fast as the server answers: bench/readyz_flood.py's flood.
dofile("report.lua")
local probe

function init(args)
   probe = wrk.format("GET", args[1] or "/readyz")
end

function request()
   return probe
end
