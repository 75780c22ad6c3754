-- graylane: Gloo Edge's two-phase canary in a gateway.solo.io/v1 VirtualService.
--
-- Contract (Kruise's): obj.data = {spec, labels, annotations} of the ORIGINAL object, obj.canaryWeight
-- (-1: the step sets no weight), obj.stableWeight, obj.matches, obj.canaryService, obj.stableService in;
-- the new {spec, labels, annotations} out. Routes are recognised by their Kubernetes Service
-- destination (routeAction.single.kube, or a routeAction.multi destination with kube):
--   - phase one, a step with matches: before each route that sends to the stable Service goes a copy
--     that sends to the canary Service and matches the route's matchers AND a step match (headers and
--     query parameters added, a step path replacing the path); everything else stays on the stable one;
--   - phase two, a step with a weight: each such route sends weighted destinations, the stable
--     Service's (scaled to stableWeight) and the canary Service's with canaryWeight.
-- Finalising restores the original route, whose stable Service then selects the new version's pods.
local data = obj.data
local spec = data.spec
local canaryWeight, stableWeight = obj.canaryWeight, obj.stableWeight
if canaryWeight == -1 then
  canaryWeight, stableWeight = 100, 0
end
if obj.canaryService == obj.stableService then
  error("Gloo routing needs a canary Service, but disableGenerateCanaryService is set", 0)
end

local function copy(value)
  if type(value) ~= "table" then return value end
  local out = {}
  for key, item in pairs(value) do out[key] = copy(item) end
  return out
end

local function isStable(destination)
  return destination ~= nil and destination.kube ~= nil and destination.kube.ref ~= nil
    and destination.kube.ref.name == obj.stableService
end

local function canaryOf(destination)
  local canary = copy(destination)
  canary.kube.ref.name = obj.canaryService
  return canary
end

-- The stable destination of a route, and whether the route splits traffic already.
local function stableDestination(route)
  local action = route.routeAction
  if action == nil then return nil, false end
  if action.single ~= nil and isStable(action.single) then return action.single, false end
  for _, weighted in ipairs((action.multi or {}).destinations or {}) do
    if isStable(weighted.destination) then return weighted.destination, true end
  end
  return nil, false
end

local pathKind = { PathPrefix = "prefix", Exact = "exact", RegularExpression = "regex" }

local function conditions(rules)
  local out = {}
  for _, rule in ipairs(rules or {}) do
    table.insert(out, { name = rule.name, value = rule.value, regex = rule.type == "RegularExpression" })
  end
  return out
end

local function withMatch(base, match)
  local matcher = copy(base)
  for _, header in ipairs(conditions(match.headers)) do
    matcher.headers = matcher.headers or {}
    table.insert(matcher.headers, header)
  end
  for _, param in ipairs(conditions(match.queryParams)) do
    matcher.queryParameters = matcher.queryParameters or {}
    table.insert(matcher.queryParameters, param)
  end
  if match.path ~= nil then
    matcher.prefix, matcher.exact, matcher.regex = nil, nil, nil
    matcher[pathKind[match.path.type or "PathPrefix"] or "prefix"] = match.path.value or "/"
  end
  return matcher
end

local function canaryRoute(route, destination)
  local canary = copy(route)
  local bases = route.matchers
  if bases == nil or #bases == 0 then bases = { { prefix = "/" } } end
  canary.matchers = {}
  for _, base in ipairs(bases) do
    for _, match in ipairs(obj.matches) do
      table.insert(canary.matchers, withMatch(base, match))
    end
  end
  canary.routeAction = { single = canaryOf(destination) }
  if route.name ~= nil then canary.name = route.name .. "-canary" end
  return canary
end

local function phaseOne(routes)
  local out = {}
  for _, route in ipairs(routes) do
    local destination = stableDestination(route)
    if destination ~= nil then table.insert(out, canaryRoute(route, destination)) end
    table.insert(out, route)
  end
  return out
end

local function weighted(route, destination, split)
  local destinations = {}
  if split then
    destinations = route.routeAction.multi.destinations
    for _, item in ipairs(destinations) do
      item.weight = math.floor((item.weight or 0) * stableWeight / 100)
    end
  else
    destinations = { { destination = destination, weight = stableWeight } }
  end
  table.insert(destinations, { destination = canaryOf(destination), weight = canaryWeight })
  route.routeAction = { multi = { destinations = destinations } }
end

local function phaseTwo(routes)
  for _, route in ipairs(routes) do
    local destination, split = stableDestination(route)
    if destination ~= nil then weighted(route, destination, split) end
  end
  return routes
end

local host = spec.virtualHost or {}
if host.routes ~= nil then
  if obj.matches ~= nil and #obj.matches > 0 then
    host.routes = phaseOne(host.routes)
  elseif obj.canaryWeight ~= -1 then
    host.routes = phaseTwo(host.routes)
  end
end
return data
