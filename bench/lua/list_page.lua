-- GET /agents?limit=100 (or the path given): the first page, the one every client asks for.
dofile("report.lua")
local page

function init(args)
   -- The path is an argument: json-server, the peer, pages with _limit.
   page = wrk.format("GET", args[1] or "/agents?limit=100")
end

function request()
   return page
end
