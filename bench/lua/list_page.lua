-- GET /agents?limit=100: the first page, the one every client asks for.
dofile("report.lua")
local page

function init(args)
   page = wrk.format("GET", "/agents?limit=100")
end

function request()
   return page
end
