-- One database per read-side service (docker-compose.yml).
CREATE DATABASE readmission;
CREATE DATABASE coordination;
CREATE DATABASE audit;
