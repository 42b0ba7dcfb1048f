-- 90% GET one, 5% POST, 5% PATCH, each as in its own scenario.
-- Arguments: the file of ids, the file of POST bodies, the file of patches.
dofile("report.lua")
local gets, posts = {}, {}
local ids, patches
-- application/json, as in patch.lua.
local patch_headers = {["Content-Type"] = "application/json"}

function init(args)
   seed_random()
   ids = read_lines(args[1])
   for _, id in ipairs(ids) do
      table.insert(gets, wrk.format("GET", "/agents/" .. id))
   end
   local post_headers = {["Content-Type"] = "application/json"}
   for _, body in ipairs(read_lines(args[2])) do
      table.insert(posts, wrk.format("POST", "/agents", post_headers, body))
   end
   patches = read_lines(args[3])
end

function request()
   local roll = math.random(100)
   if roll <= 90 then
      return gets[math.random(#gets)]
   elseif roll <= 95 then
      return posts[math.random(#posts)]
   end
   return wrk.format("PATCH", "/agents/" .. ids[math.random(#ids)], patch_headers,
                     patches[math.random(#patches)])
end
